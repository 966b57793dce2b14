// The test kit's public surface (filled in by the testkit move).
export {};
