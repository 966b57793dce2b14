// What the daemon answers: the part to make yours. Requests and answers are
// bytes inside frames; here both are UTF-8 text. Use JSON, protobuf or
// anything else your client and daemon agree on.
const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

export class RequestError extends Error {
  override readonly name = 'RequestError';
  readonly code = 'NOT_UTF8';
}

/** The answer to one request's payload. Throws RequestError for a payload that is not UTF-8. */
export function answer(payload: Uint8Array): Uint8Array {
  let text: string;
  try {
    text = decoder.decode(payload);
  } catch (error) {
    throw new RequestError('the request is not UTF-8 text', { cause: error });
  }
  return encoder.encode(`hello, ${text === '' ? 'world' : text}!`);
}
