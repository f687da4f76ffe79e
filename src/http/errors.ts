// Errors of the raw HTTP client. Two classes, split by what a caller does next:
// HttpConnectError means no response came (retry the request), HttpBodyError
// means a response was cut short (the data read so far is valid, then retry).

/** Why request() failed; every kind is retryable except perhaps "protocol". */
export type ConnectErrorKind =
  /** TCP connect refused / unreachable, DNS failure, Unix socket missing */
  | "connect"
  /** TLS handshake or certificate verification failed */
  | "tls"
  /** the proxy refused the CONNECT (see status) or answered nonsense */
  | "proxy"
  /** connectTimeoutMs elapsed before the connection (TLS, tunnel) was up */
  | "connect-timeout"
  /** headersTimeoutMs elapsed before the response head */
  | "headers-timeout"
  /** the connection closed or failed after the request, before the response head */
  | "closed"
  /** the response head is malformed or larger than 64 KiB */
  | "protocol";

export interface ConnectErrorInit {
  kind: ConnectErrorKind;
  /** e.g. ECONNREFUSED, UNABLE_TO_VERIFY_LEAF_SIGNATURE */
  code?: string;
  /** the proxy's CONNECT status */
  status?: number;
  cause?: unknown;
}

/** request() failed: no response head was received. */
export class HttpConnectError extends Error {
  override readonly name = "HttpConnectError";
  readonly kind: ConnectErrorKind;
  readonly code: string | undefined;
  readonly status: number | undefined;

  constructor(message: string, init: ConnectErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.kind = init.kind;
    this.code = init.code;
    this.status = init.status;
  }
}

export type BodyErrorKind =
  /** the connection ended (FIN, RST, TLS failure) before the body was complete */
  | "truncated"
  /** bad chunked framing */
  | "protocol"
  /** text(): the body is larger than the limit */
  | "too-large";

/** The response body was cut short or is malformed. */
export class HttpBodyError extends Error {
  override readonly name = "HttpBodyError";
  readonly kind: BodyErrorKind;

  constructor(message: string, kind: BodyErrorKind, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.kind = kind;
  }
}

/** What an abort rejects with: the signal's reason when it is an Error (as fetch does), else an AbortError. */
export function abortError(signal: AbortSignal | undefined, message = "The operation was aborted"): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return new DOMException(message, "AbortError");
}

/** The error's code (Bun's socket errors and node:tls errors carry one), if any. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  const code: unknown = err.code;
  return typeof code === "string" ? code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
