#include "runtime/sidecar/journal/power_loss_file_system.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace callmesh::sidecar {
namespace {

namespace fs = std::filesystem;

class PowerLossFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = (fs::path(::testing::TempDir()) /
             ::testing::UnitTest::GetInstance()->current_test_info()->name())
                .string();
    fs::remove_all(base_);
    dir_ = base_ + "/db";
    fs::create_directories(dir_);
    ASSERT_TRUE(file_system_.NewDirectory(dir_, rocksdb::IOOptions(), &directory_, nullptr).ok());
  }

  std::unique_ptr<rocksdb::FSWritableFile> Create(const std::string& name) {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    EXPECT_TRUE(
        file_system_.NewWritableFile(dir_ + "/" + name, rocksdb::FileOptions(), &file, nullptr)
            .ok());
    return file;
  }
  static void Append(rocksdb::FSWritableFile& file, const std::string& data) {
    ASSERT_TRUE(file.Append(data, rocksdb::IOOptions(), nullptr).ok());
    ASSERT_TRUE(file.Flush(rocksdb::IOOptions(), nullptr).ok());
  }
  static void Sync(rocksdb::FSWritableFile& file) {
    ASSERT_TRUE(file.Sync(rocksdb::IOOptions(), nullptr).ok());
  }
  void SyncDirectory() { ASSERT_TRUE(directory_->Fsync(rocksdb::IOOptions(), nullptr).ok()); }

  // Cuts the power into a new folder; returns it.
  std::string PowerLoss(PowerLossFileSystem::Loss* loss = nullptr) {
    const std::string after = absl::StrCat(base_, "/after-", ++losses_);
    absl::StatusOr<PowerLossFileSystem::Loss> result = file_system_.CopyDurableState(dir_, after);
    EXPECT_TRUE(result.ok()) << result.status();
    if (loss != nullptr && result.ok()) *loss = *result;
    return after;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  std::string base_;
  std::string dir_;
  PowerLossFileSystem file_system_;
  std::unique_ptr<rocksdb::FSDirectory> directory_;
  int losses_ = 0;
};

TEST_F(PowerLossFileSystemTest, DropsWhatWasAppendedSinceTheLastSync) {
  std::unique_ptr<rocksdb::FSWritableFile> file = Create("000001.log");
  SyncDirectory();
  Append(*file, "synced;");
  Sync(*file);
  Append(*file, "not synced");
  PowerLossFileSystem::Loss loss;
  const std::string after = PowerLoss(&loss);
  EXPECT_EQ(Read(after + "/000001.log"), "synced;");
  EXPECT_EQ(loss.bytes_dropped, 10u);
  EXPECT_EQ(Read(dir_ + "/000001.log"), "synced;not synced") << "the live file is untouched";

  // Writing goes on; Fsync counts as a sync too, Flush does not.
  ASSERT_TRUE(file->Fsync(rocksdb::IOOptions(), nullptr).ok());
  Append(*file, " tail");
  EXPECT_EQ(Read(PowerLoss() + "/000001.log"), "synced;not synced");
}

TEST_F(PowerLossFileSystemTest, MayKeepAPrefixOfTheUnsyncedBytes) {
  std::unique_ptr<rocksdb::FSWritableFile> file = Create("000001.log");
  SyncDirectory();
  Append(*file, "synced;");
  Sync(*file);
  Append(*file, "torn record");
  uint64_t offered = 0;
  absl::StatusOr<PowerLossFileSystem::Loss> loss =
      file_system_.CopyDurableState(dir_, base_ + "/torn", [&](uint64_t unsynced) {
        offered = unsynced;
        return 4;
      });
  ASSERT_TRUE(loss.ok()) << loss.status();
  EXPECT_EQ(offered, 11u);
  EXPECT_EQ(Read(base_ + "/torn/000001.log"), "synced;torn");
  EXPECT_EQ(loss->bytes_dropped, 7u);
}

TEST_F(PowerLossFileSystemTest, FileCreatedSinceTheLastDirectorySyncVanishes) {
  std::unique_ptr<rocksdb::FSWritableFile> file = Create("000002.sst");
  Append(*file, "table");
  Sync(*file);
  PowerLossFileSystem::Loss loss;
  std::string after = PowerLoss(&loss);
  EXPECT_FALSE(fs::exists(after + "/000002.sst"));
  EXPECT_EQ(loss.files_vanished, 1);

  SyncDirectory();
  after = PowerLoss(&loss);
  EXPECT_EQ(Read(after + "/000002.sst"), "table");
  EXPECT_EQ(loss.files_vanished, 0);
}

TEST_F(PowerLossFileSystemTest, RenameOverAFileIsDurableOnlyAfterTheDirectorySync) {
  std::ofstream(dir_ + "/CURRENT") << "MANIFEST-000001\n";  // from before: durable
  std::unique_ptr<rocksdb::FSWritableFile> file = Create("000003.dbtmp");
  Append(*file, "MANIFEST-000005\n");
  Sync(*file);
  ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());
  ASSERT_TRUE(
      file_system_
          .RenameFile(dir_ + "/000003.dbtmp", dir_ + "/CURRENT", rocksdb::IOOptions(), nullptr)
          .ok());
  PowerLossFileSystem::Loss loss;
  std::string after = PowerLoss(&loss);
  EXPECT_EQ(Read(after + "/CURRENT"), "MANIFEST-000001\n");
  EXPECT_EQ(loss.renames_reverted, 1);
  EXPECT_FALSE(fs::exists(after + "/000003.dbtmp"));

  SyncDirectory();
  after = PowerLoss(&loss);
  EXPECT_EQ(Read(after + "/CURRENT"), "MANIFEST-000005\n");
  EXPECT_EQ(loss.renames_reverted, 0);
}

TEST_F(PowerLossFileSystemTest, FilesItNeverWroteAreKeptWholeAndDeletesAreDurable) {
  std::ofstream(dir_ + "/LOCK") << "";
  std::ofstream(dir_ + "/IDENTITY") << "written by someone else";
  std::unique_ptr<rocksdb::FSWritableFile> file = Create("000004.log");
  SyncDirectory();
  ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());
  ASSERT_TRUE(file_system_.DeleteFile(dir_ + "/000004.log", rocksdb::IOOptions(), nullptr).ok());
  const std::string after = PowerLoss();
  EXPECT_EQ(Read(after + "/IDENTITY"), "written by someone else");
  EXPECT_TRUE(fs::exists(after + "/LOCK"));
  EXPECT_FALSE(fs::exists(after + "/000004.log"));
}

TEST_F(PowerLossFileSystemTest, RefusesToCopyOverAnExistingFolderAndUntrackedWrites) {
  fs::create_directories(base_ + "/taken");
  absl::StatusOr<PowerLossFileSystem::Loss> loss =
      file_system_.CopyDurableState(dir_, base_ + "/taken");
  EXPECT_EQ(loss.status().code(), absl::StatusCode::kFailedPrecondition) << loss.status();

  std::unique_ptr<rocksdb::FSRandomRWFile> random_rw;
  EXPECT_TRUE(file_system_.NewRandomRWFile(dir_ + "/x", rocksdb::FileOptions(), &random_rw, nullptr)
                  .IsNotSupported());
  EXPECT_TRUE(file_system_.LinkFile(dir_ + "/x", dir_ + "/y", rocksdb::IOOptions(), nullptr)
                  .IsNotSupported());
}

}  // namespace
}  // namespace callmesh::sidecar
