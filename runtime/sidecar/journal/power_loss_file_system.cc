#include "runtime/sidecar/journal/power_loss_file_system.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace callmesh::sidecar {
namespace {

namespace fs = std::filesystem;

std::string Normalize(const std::string& path) {
  std::string normal = fs::path(path).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

std::string ParentOf(const std::string& normalized_path) {
  return fs::path(normalized_path).parent_path().string();
}

absl::StatusOr<std::string> ReadPrefix(const std::string& path, uint64_t bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path));
  std::string content(bytes, '\0');
  in.read(content.data(), static_cast<std::streamsize>(bytes));
  if (static_cast<uint64_t>(in.gcount()) != bytes) {
    return absl::InternalError(absl::StrCat(path, " holds fewer than the ", bytes,
                                            " bytes written to it (", in.gcount(), ")"));
  }
  return content;
}

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

rocksdb::IOStatus Refused(const char* what) {
  return rocksdb::IOStatus::NotSupported(absl::StrCat("PowerLossFileSystem does not track ", what));
}

}  // namespace

// Forwards to the real file, holding the file system's mutex, and records sizes.
class PowerLossFileSystem::TrackedFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(std::unique_ptr<rocksdb::FSWritableFile> file, PowerLossFileSystem* fs,
              std::string path)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(file)), fs_(fs), path_(std::move(path)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    rocksdb::IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) Grow(data.size());
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    rocksdb::IOStatus s = target()->Append(data, options, info, dbg);
    if (s.ok()) Grow(data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                     rocksdb::IODebugContext*) override {
    return Refused("PositionedAppend (direct I/O)");
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                     const rocksdb::DataVerificationInfo&,
                                     rocksdb::IODebugContext*) override {
    return Refused("PositionedAppend (direct I/O)");
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    rocksdb::IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) {
      auto it = fs_->files_.find(path_);
      if (it != fs_->files_.end()) {
        it->second.size = size;
        it->second.synced_size = std::min(it->second.synced_size, size);
      }
    }
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    rocksdb::IOStatus s = target()->Sync(options, dbg);
    if (s.ok()) MarkSynced();
    return s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    rocksdb::IOStatus s = target()->Fsync(options, dbg);
    if (s.ok()) MarkSynced();
    return s;
  }
  // The default RangeSync is a no-op that reports OK; it makes nothing durable here either.

 private:
  void Grow(uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu_) {
    auto it = fs_->files_.find(path_);
    if (it != fs_->files_.end()) it->second.size += bytes;
  }
  void MarkSynced() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu_) {
    auto it = fs_->files_.find(path_);
    if (it != fs_->files_.end()) it->second.synced_size = it->second.size;
  }

  PowerLossFileSystem* const fs_;
  const std::string path_;
};

// Forwards to the real directory and marks its entries synced after each directory sync.
class PowerLossFileSystem::TrackedDirectory : public rocksdb::FSDirectoryWrapper {
 public:
  TrackedDirectory(std::unique_ptr<rocksdb::FSDirectory> dir, PowerLossFileSystem* fs,
                   std::string path)
      : rocksdb::FSDirectoryWrapper(std::move(dir)), fs_(fs), path_(std::move(path)) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    rocksdb::IOStatus s = rocksdb::FSDirectoryWrapper::Fsync(options, dbg);
    if (s.ok()) MarkEntriesSynced();
    return s;
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& options,
                                        rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& dir_options) override {
    absl::MutexLock lock(&fs_->mu_);
    rocksdb::IOStatus s =
        rocksdb::FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options);
    if (s.ok()) MarkEntriesSynced();
    return s;
  }

 private:
  void MarkEntriesSynced() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu_) {
    for (auto& [path, state] : fs_->files_) {
      if (ParentOf(path) != path_) continue;
      state.entry_synced = true;
      state.replaced_content.reset();
    }
  }

  PowerLossFileSystem* const fs_;
  const std::string path_;
};

PowerLossFileSystem::PowerLossFileSystem()
    : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}

PowerLossFileSystem::FileState& PowerLossFileSystem::StateOf(const std::string& path) {
  auto it = files_.find(path);
  if (it != files_.end()) return it->second;
  FileState state;
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (!ec) {
    state.size = state.synced_size = size;
    state.entry_synced = true;
  }
  return files_.emplace(path, state).first->second;
}

std::optional<std::string> PowerLossFileSystem::DurableContent(const std::string& path) {
  // Only called for tracked paths.
  const FileState& state = files_.at(path);
  if (!state.entry_synced) return state.replaced_content;
  absl::StatusOr<std::string> content = ReadPrefix(path, state.synced_size);
  if (!content.ok()) return std::nullopt;
  return *std::move(content);
}

absl::StatusOr<PowerLossFileSystem::Loss> PowerLossFileSystem::CopyDurableState(
    const std::string& dir, const std::string& to, const UnsyncedKept& kept) {
  absl::MutexLock lock(&mu_);
  std::error_code ec;
  if (fs::exists(to, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("power loss copy: ", to, " exists"));
  }
  fs::create_directories(to, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", to, ": ", ec.message()));
  Loss loss;
  const std::string from = Normalize(dir);
  for (const fs::directory_entry& entry : fs::directory_iterator(from, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string path = Normalize(entry.path().string());
    std::optional<std::string> content;
    auto tracked = files_.find(path);
    if (tracked == files_.end()) {
      absl::StatusOr<std::string> whole = ReadWhole(path);
      if (!whole.ok()) return whole.status();
      content = *std::move(whole);
    } else {
      const FileState& state = tracked->second;
      if (state.entry_synced) {
        const uint64_t unsynced = state.size - state.synced_size;
        const uint64_t keep = kept && unsynced > 0 ? std::min(kept(unsynced), unsynced) : 0;
        absl::StatusOr<std::string> prefix = ReadPrefix(path, state.synced_size + keep);
        if (!prefix.ok()) return prefix.status();
        content = *std::move(prefix);
        loss.bytes_dropped += unsynced - keep;
      } else if (state.replaced_content.has_value()) {
        content = state.replaced_content;
        ++loss.renames_reverted;
      } else {
        ++loss.files_vanished;
      }
    }
    if (!content.has_value()) continue;
    const std::string copy = (fs::path(to) / entry.path().filename()).string();
    std::ofstream out(copy, std::ios::binary | std::ios::trunc);
    out.write(content->data(), static_cast<std::streamsize>(content->size()));
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", copy));
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", from, ": ", ec.message()));
  return loss;
}

rocksdb::IOStatus PowerLossFileSystem::NewWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  const std::string path = Normalize(name);
  absl::MutexLock lock(&mu_);
  // An existing file keeps its (possibly synced) directory entry; it is truncated to empty.
  std::error_code ec;
  const bool existed = fs::exists(path, ec);
  const bool entry_synced = existed && StateOf(path).entry_synced;
  rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, dbg);
  if (!s.ok()) return s;
  FileState state;
  state.entry_synced = entry_synced;
  files_[path] = state;
  *result = std::make_unique<TrackedFile>(std::move(*result), this, path);
  return s;
}

rocksdb::IOStatus PowerLossFileSystem::ReopenWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  const std::string path = Normalize(name);
  absl::MutexLock lock(&mu_);
  StateOf(path);  // an existing file: as it is; a new one: empty, entry not synced
  rocksdb::IOStatus s = target()->ReopenWritableFile(name, options, result, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<TrackedFile>(std::move(*result), this, path);
  return s;
}

rocksdb::IOStatus PowerLossFileSystem::ReuseWritableFile(const std::string&, const std::string&,
                                                         const rocksdb::FileOptions&,
                                                         std::unique_ptr<rocksdb::FSWritableFile>*,
                                                         rocksdb::IODebugContext*) {
  return Refused("ReuseWritableFile (recycled logs)");
}

rocksdb::IOStatus PowerLossFileSystem::NewRandomRWFile(const std::string&,
                                                       const rocksdb::FileOptions&,
                                                       std::unique_ptr<rocksdb::FSRandomRWFile>*,
                                                       rocksdb::IODebugContext*) {
  return Refused("NewRandomRWFile");
}

rocksdb::IOStatus PowerLossFileSystem::NewDirectory(const std::string& name,
                                                    const rocksdb::IOOptions& options,
                                                    std::unique_ptr<rocksdb::FSDirectory>* result,
                                                    rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = target()->NewDirectory(name, options, result, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<TrackedDirectory>(std::move(*result), this, Normalize(name));
  return s;
}

rocksdb::IOStatus PowerLossFileSystem::RenameFile(const std::string& from, const std::string& to,
                                                  const rocksdb::IOOptions& options,
                                                  rocksdb::IODebugContext* dbg) {
  const std::string source = Normalize(from);
  const std::string target_path = Normalize(to);
  absl::MutexLock lock(&mu_);
  std::optional<std::string> replaced;
  std::error_code ec;
  if (fs::exists(target_path, ec)) {
    StateOf(target_path);
    replaced = DurableContent(target_path);
  }
  FileState moved = StateOf(source);
  rocksdb::IOStatus s = target()->RenameFile(from, to, options, dbg);
  if (!s.ok()) return s;
  files_.erase(source);
  moved.entry_synced = false;
  moved.replaced_content = std::move(replaced);
  files_[target_path] = std::move(moved);
  return s;
}

rocksdb::IOStatus PowerLossFileSystem::DeleteFile(const std::string& name,
                                                  const rocksdb::IOOptions& options,
                                                  rocksdb::IODebugContext* dbg) {
  absl::MutexLock lock(&mu_);
  rocksdb::IOStatus s = target()->DeleteFile(name, options, dbg);
  if (s.ok()) files_.erase(Normalize(name));
  return s;
}

rocksdb::IOStatus PowerLossFileSystem::LinkFile(const std::string&, const std::string&,
                                                const rocksdb::IOOptions&,
                                                rocksdb::IODebugContext*) {
  return Refused("LinkFile");
}

rocksdb::IOStatus PowerLossFileSystem::Truncate(const std::string&, size_t,
                                                const rocksdb::IOOptions&,
                                                rocksdb::IODebugContext*) {
  return Refused("Truncate by name");
}

}  // namespace callmesh::sidecar
