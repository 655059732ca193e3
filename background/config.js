// @ts-check
// Replaced in dist/ by `cargo xtask build --server URL`.
export const DEFAULT_SERVER = "http://127.0.0.1:7780";
