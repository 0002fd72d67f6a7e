// A RocksDB FileSystem for power-loss tests, in the manner of LevelDB's fault-injection test:
// it keeps track of what each file held at its last sync and of which directory entries were
// synced, and can at any instant write out the files of a folder as a power loss at that instant
// would leave them on disk. Open the journal on the copy to see what survives.
//
//   auto fs = std::make_shared<PowerLossFileSystem>();
//   std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
//   options.env = env.get();                          // JournalOptions; journal on `dir`
//   ... writes ...
//   absl::StatusOr<PowerLossFileSystem::Loss> loss = fs->CopyDurableState(dir, after);
//   // open a journal on `after` (with the default environment) and check it
//
// The model of the disk after a power loss:
//   - A file holds what it held at its last Sync/Fsync (RangeSync, Flush and Close do not count):
//     everything appended since is dropped.
//   - A file created (or renamed into place) since the last sync of its directory vanishes; a
//     rename over an existing file that was not followed by a directory sync leaves the old file.
//   - Deletions are taken as durable at once, and the source of a rename does not come back.
//   - Files this file system never opened for writing (they existed before it was made, or are
//     written outside it, like RocksDB's LOCK) are kept whole.
//   - Optionally (see CopyDurableState), a prefix of a file's unsynced bytes made it to disk: a
//     torn last record. Holes or reordered pages within the unsynced tail are not produced.
// ReuseWritableFile, NewRandomRWFile, LinkFile and Truncate by name are refused (NotSupported)
// rather than left untracked; RocksDB as the journal configures it does not use them.
//
// Thread-safe: every write-side operation, and CopyDurableState, hold one mutex, so a copy sees
// each file operation either wholly done or not started.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace callmesh::sidecar {

class PowerLossFileSystem : public rocksdb::FileSystemWrapper {
 public:
  // Wraps the default (POSIX) file system.
  PowerLossFileSystem();

  const char* Name() const override { return "PowerLossFileSystem"; }

  // What a power loss at one instant drops.
  struct Loss {
    uint64_t bytes_dropped = 0;  // appended but not synced (in files that stay)
    int files_vanished = 0;      // created or renamed into place since the last directory sync
    int renames_reverted = 0;    // the old file is back
  };

  // How many of a file's `unsynced` bytes the disk happened to write before the power went
  // (a prefix: 0 to `unsynced`). Called with the file system's mutex held.
  using UnsyncedKept = std::function<uint64_t(uint64_t unsynced)>;

  // Writes into the folder `to` (created; it must not exist yet) the regular files directly in
  // `dir` as a power loss now would leave them (see the model above), and reports what was
  // dropped. With `kept`, each file that stays also keeps that prefix of its unsynced bytes, so
  // that its last record may be torn. The files in `dir` are not changed, and writing may go on.
  // Errors:
  //   FAILED_PRECONDITION `to` exists.
  //   INTERNAL            a file cannot be read or written (naming it).
  absl::StatusOr<Loss> CopyDurableState(const std::string& dir, const std::string& to,
                                        const UnsyncedKept& kept = nullptr);

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& name, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& from, const std::string& to,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& name, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;

 private:
  class TrackedFile;
  class TrackedDirectory;

  struct FileState {
    uint64_t size = 0;         // bytes appended so far
    uint64_t synced_size = 0;  // size at the last Sync/Fsync
    // Whether the directory entry survives: the file existed before it was (re)opened, or its
    // directory was synced since it was created or renamed into place.
    bool entry_synced = false;
    // Set by a rename over a file whose entry was synced, until the directory is synced: what
    // the destination holds again after a power loss.
    std::optional<std::string> replaced_content;
  };

  // A file's state, created on first use (for a file that existed before it was opened for
  // writing: its current size, all synced, entry synced).
  FileState& StateOf(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The bytes a power loss would leave of `path` now (nullopt: the file would be gone).
  std::optional<std::string> DurableContent(const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  // By normalized path.
  std::map<std::string, FileState> files_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::sidecar
