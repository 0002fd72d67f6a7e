// A RocksDB FileSystem for journal tests that can fail or hold the writes of the write-ahead log
// (files named *.log), the way a full or failing disk would.
//
//   auto fs = std::make_shared<FaultInjectionFileSystem>();
//   std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
//   options.env = env.get();                  // JournalOptions
//   fs->FailWalWrites(true);                  // Append/Flush/Sync now return IOError (EIO-like)
//   fs->HoldWalSyncs(true);                   // the next WAL Sync blocks...
//   fs->WaitForHeldSync();                    // ...until it has started (the writer is inside it)
//   fs->HoldWalSyncs(false);                  // ...and is released here
//   fs->ReleaseOneHeldSync();                 // or: let one sync through, keep holding the rest
//
// Thread-safe. Only files opened after construction are affected; everything else passes through
// to the default (POSIX) file system.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace callmesh::sidecar {

class FaultInjectionFileSystem : public rocksdb::FileSystemWrapper {
 public:
  FaultInjectionFileSystem() : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}

  const char* Name() const override { return "FaultInjectionFileSystem"; }

  // While true, every Append, Flush, Sync and Fsync of a WAL file fails.
  void FailWalWrites(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_ = fail;
  }
  // While true, WAL syncs block (after counting themselves as held) until it is set to false.
  void HoldWalSyncs(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
  }
  // Blocks until a WAL sync is being held.
  void WaitForHeldSync() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&held_syncs_waiting_));
  }
  // Lets one held (or the next) WAL sync through while the others stay held; returns once it
  // has left the hold.
  void ReleaseOneHeldSync() {
    absl::MutexLock lock(&mu_);
    ++releases_;
    mu_.Await(absl::Condition(
        +[](int* releases) { return *releases == 0; }, &releases_));
  }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, dbg);
    if (s.ok() && absl::EndsWith(name, ".log")) {
      *result = std::make_unique<WalFile>(std::move(*result), this);
    }
    return s;
  }

 private:
  class WalFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    WalFile(std::unique_ptr<rocksdb::FSWritableFile> file, FaultInjectionFileSystem* fs)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->failing()) return Injected();
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->failing()) return Injected();
      return target()->Append(data, options, info, dbg);
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (fs_->failing()) return Injected();
      return target()->Flush(options, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      fs_->MaybeHold();
      if (fs_->failing()) return Injected();
      return target()->Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      fs_->MaybeHold();
      if (fs_->failing()) return Injected();
      return target()->Fsync(options, dbg);
    }

   private:
    static rocksdb::IOStatus Injected() {
      return rocksdb::IOStatus::IOError("injected fault: Input/output error");
    }
    FaultInjectionFileSystem* const fs_;
  };

  bool failing() {
    absl::MutexLock lock(&mu_);
    return fail_;
  }
  void MaybeHold() {
    absl::MutexLock lock(&mu_);
    if (!hold_) return;
    held_syncs_waiting_ = true;
    auto go = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !hold_ || releases_ > 0; };
    mu_.Await(absl::Condition(&go));
    if (hold_) --releases_;
    held_syncs_waiting_ = false;
  }

  absl::Mutex mu_;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool held_syncs_waiting_ ABSL_GUARDED_BY(mu_) = false;
  int releases_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace callmesh::sidecar
