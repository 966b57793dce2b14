{
  "targets": [
    {
      "target_name": "fdpass",
      "sources": [
        "native/addon_data.cc",
        "native/binding.cc",
        "native/errno_names.cc",
        "native/memfd.cc",
        "native/napi_args.cc",
        "native/nested_poll.cc",
        "native/peer_cred.cc",
        "native/poll_watcher.cc",
        "native/process_handle.cc",
        "native/process_spawn.cc",
        "native/recv_binding.cc",
        "native/scm_rights.cc",
        "native/sockaddr_image.cc",
        "native/spawn_binding.cc",
        "native/unix_datagram.cc",
        "native/unix_socket.cc",
        "native/watcher_binding.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-fstack-protector-strong", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fstack-protector-strong", "-Wall", "-Wextra"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "OTHER_CFLAGS": ["-fstack-protector-strong"]
      }
    }
  ]
}
