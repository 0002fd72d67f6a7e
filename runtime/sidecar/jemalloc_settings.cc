// jemalloc's settings for callmeshd, which links jemalloc in (runtime/sidecar/BUILD.bazel; not
// callmeshd_glibc_malloc). jemalloc reads this string at its first allocation and MALLOC_CONF from
// the environment after it, so an operator can still override any setting
// (`MALLOC_CONF=narenas:4 callmeshd ...`).
//
// - background_thread:true: without background threads freed pages go back to the OS only during
//   later allocations, so an idle sidecar kept what a burst of calls had used (the soak benchmark:
//   72.7 MB of anonymous memory after every result was purged, 53.6 MB with them; bench/README.md
//   "Memory over a long run").
// - narenas:1 instead of jemalloc's default of four arenas per CPU: the sidecar's ~80 threads
//   spread over eight arenas on two cores kept eight sets of partly used pages, 3 MB more resident
//   with 1k calls pending, and one arena changed neither completions/s nor CPU per call at 64
//   calls in flight (bench/README.md "Round seven"; measured on two cores only). Threads keep
//   their own caches (tcache), so the arena's lock is taken only when a cache fills or runs dry.
extern "C" {
const char* malloc_conf = "background_thread:true,narenas:1";
}
