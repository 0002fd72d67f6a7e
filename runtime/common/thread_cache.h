// Gives back what the calling thread's allocator cache holds: jemalloc keeps a cache of freed
// blocks per thread (its tcache), which a thread that then sleeps keeps for as long as it sleeps.
// In callmeshd (which links jemalloc) this returns them to the shared arena, whose background
// thread returns emptied pages to the system; under any other allocator it does nothing.
//
//   ... a worker that has run tasks and found nothing more to do for a while ...
//   ReleaseThreadCache();
//
// Costs a few microseconds, and the next allocations of this thread refill the cache: call it when
// a thread goes idle, not between two tasks. Thread-safe (it acts on the calling thread only).
#pragma once

namespace callmesh {

void ReleaseThreadCache();

}  // namespace callmesh
