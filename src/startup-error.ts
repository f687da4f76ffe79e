// A problem found while starting (listen address, kubeconfig, API refusal):
// reported as one line on stderr with exit code 2, like a bad flag.
export class StartupError extends Error {}
