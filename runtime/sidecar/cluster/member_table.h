// When this sidecar last heard from each other sidecar of the cluster, and which of them have
// been silent for longer than the instance TTL: the liveness rule of the shared registry.
//
//   MemberTable members(absl::Seconds(3), absl::Seconds(1));   // TTL, heartbeat interval
//   members.Heard("host-2", clock.Now());          // a put of host-2's entry arrived
//   members.BucketWorks(clock.Now());              // this sidecar's own put came back
//   for (const std::string& gone : members.Expire(clock.Now())) registry.RemoveRemote(gone);
//
// Silence counts only while the bucket demonstrably works: this sidecar's own heartbeats coming
// back through the watch (BucketWorks) show that. While the bucket does not work — its stream
// electing a leader, this host cut off from NATS — nobody is heard from, and dropping every other
// sidecar then would make all remote services unknown although they are alive. So:
//   - a gap of more than two heartbeats between our own echoes is a stall; when the echoes come
//     back, the bucket "works since" then, and every sidecar gets a whole TTL from that moment to
//     be heard again (their puts failed during the stall just as ours did);
//   - a sidecar is dropped once it has been silent for the TTL, counted from its last put or from
//     when the bucket last started working, whichever is later, and our own echoes confirm the
//     bucket worked through that TTL.
// Calls meanwhile go to the instances last known, whose connections say whether they are
// reachable.
//
// An entry replayed when a watch starts may be old: HeardAt ignores it if it was written (on the
// NATS server's clock) longer than the TTL ago — a sidecar that died before this one started must
// not be called. Live updates use the time they arrive (Heard), so clock skew between hosts does
// not shorten or stretch the TTL.
//
// Not thread-safe: owned by the watch thread (cluster_membership.h). Time is passed in, so tests
// drive it without sleeping.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace callmesh::sidecar::cluster {

class MemberTable {
 public:
  MemberTable(absl::Duration ttl, absl::Duration heartbeat) : ttl_(ttl), heartbeat_(heartbeat) {}

  // `sidecar`'s entry was written at `written` and is seen at `now`. False (and nothing noted)
  // if it was already older than the TTL; true if the sidecar counts as alive.
  bool HeardAt(const std::string& sidecar, absl::Time written, absl::Time now);
  // A live update from `sidecar`, arriving at `now`.
  void Heard(const std::string& sidecar, absl::Time now) { last_heard_[sidecar] = now; }
  // `sidecar` left (its entry was deleted). True if it was known.
  bool Forget(const std::string& sidecar) { return last_heard_.erase(sidecar) > 0; }
  // This sidecar's own entry came back through the watch at `now`.
  void BucketWorks(absl::Time now);
  // Removes and returns, sorted, the sidecars silent for the TTL or longer as of `now` (see the
  // rule above).
  std::vector<std::string> Expire(absl::Time now);

  size_t size() const { return last_heard_.size(); }

 private:
  const absl::Duration ttl_;
  const absl::Duration heartbeat_;
  std::map<std::string, absl::Time> last_heard_;
  // Our last own echo, and since when the echoes have come without a stall.
  absl::Time bucket_works_at_ = absl::InfinitePast();
  absl::Time works_since_ = absl::InfinitePast();
};

}  // namespace callmesh::sidecar::cluster
