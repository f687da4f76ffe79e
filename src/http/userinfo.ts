// Credentials in a URL (http://user:pass@host/): sent as Basic auth, as curl
// and reqwest (the Rust original's client) do, and never shown in full.

/** The URL for messages and logs: user and password masked (a user name can be a token too). */
export function shownUrl(url: URL): string {
  if (url.username === "" && url.password === "") return url.href;
  const copy = new URL(url.href);
  copy.username = "***";
  copy.password = "";
  return copy.href;
}

/** "Basic …" for the URL's user and password, or undefined when it has none. */
export function basicAuthorization(url: URL): string | undefined {
  if (url.username === "" && url.password === "") return undefined;
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
}
