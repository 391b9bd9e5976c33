// safetensors: the shared fixtures (single file and a 3-shard index), then hostile files.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "io/io_test_util.h"

namespace fastgen {
namespace {

using testing::Rng;
using testing::SafetensorsBytes;
using testing::TempDir;
using testing::WriteBytes;
using testing::WriteText;

const std::string kShared = FASTGEN_SHARED_DIR;

TEST(Safetensors, ReadsSingleFileFixture) {
  WeightMap w;
  Status s = ReadSafetensorsDir(kShared + "/fixtures/llama", &w);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(w.size(), 21u);  // __metadata__ is not a tensor
  const TensorView* e = w.Find("model.embed_tokens.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype, DType::kF32);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{256, 64}));
  EXPECT_EQ(e->nbytes, 256u * 64u * 4u);
}

TEST(Safetensors, ReadsShardedBf16Model) {
  WeightMap w;
  Status s = ReadSafetensorsDir(kShared + "/models/fg-target", &w);
  ASSERT_TRUE(s.ok()) << s.message();
  const TensorView* e = w.Find("model.embed_tokens.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype, DType::kBF16);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{8192, 384}));
  EXPECT_EQ(w.Find("model.layers.7.mlp.down_proj.weight")->dtype, DType::kBF16);
  EXPECT_GT(w.TotalBytes(), 30'000'000u);
}

// Two F32 tensors: "a" [2, 2] at [0, 16) and "b" [4] at [16, 32).
std::string TwoTensorHeader() {
  return R"({"__metadata__":{"format":"pt"},)"
         R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
         R"("b":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})";
}

std::vector<uint8_t> TwoTensorFile() {
  std::vector<uint8_t> data(32);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  return SafetensorsBytes(TwoTensorHeader(), data);
}

Status ReadFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  WriteBytes(path, bytes);
  WeightMap w;
  return ReadSafetensors(path, &w);
}

void ExpectError(const std::string& path, const std::string& header, size_t data_bytes,
                 const std::string& what, ErrorCode code = ErrorCode::kCorruptFile) {
  Status s = ReadFile(path, SafetensorsBytes(header, std::vector<uint8_t>(data_bytes)));
  ASSERT_FALSE(s.ok()) << header;
  EXPECT_EQ(s.code(), code) << s.message();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
}

TEST(Safetensors, ValidSmallFile) {
  TempDir dir;
  const std::string path = dir.File("ok.safetensors");
  WriteBytes(path, TwoTensorFile());
  WeightMap w;
  ASSERT_TRUE(ReadSafetensors(path, &w).ok());
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w.Find("b")->data[0], 16);
  EXPECT_EQ(w.Find("a")->shape, (std::vector<int64_t>{2, 2}));
}

TEST(SafetensorsHostile, EveryTruncationFails) {
  TempDir dir;
  const std::vector<uint8_t> full = TwoTensorFile();
  const std::string path = dir.File("t.safetensors");
  for (size_t len = 0; len < full.size(); ++len) {
    Status s = ReadFile(path, std::vector<uint8_t>(full.begin(), full.begin() + static_cast<long>(len)));
    ASSERT_FALSE(s.ok()) << len;
    ASSERT_NE(s.message().find(path), std::string::npos) << s.message();
  }
}

TEST(SafetensorsHostile, RandomByteFlipsNeverCrash) {
  TempDir dir;
  const std::vector<uint8_t> full = TwoTensorFile();
  const std::string path = dir.File("f.safetensors");
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    Rng rng(seed);
    std::vector<uint8_t> b = full;
    const int flips = 1 + static_cast<int>(rng.Below(3));
    for (int i = 0; i < flips; ++i) b[rng.Below(b.size())] ^= static_cast<uint8_t>(1 + rng.Below(255));
    Status s = ReadFile(path, b);
    if (!s.ok()) {
      ASSERT_NE(s.message().find(path), std::string::npos) << s.message();
    }
  }
}

TEST(SafetensorsHostile, HeaderLength) {
  TempDir dir;
  const std::string path = dir.File("h.safetensors");
  testing::Bytes b;
  b.U64(uint64_t{1} << 63).Raw("{}");
  Status s = ReadFile(path, b.bytes());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("header length"), std::string::npos) << s.message();
  s = ReadFile(path, {1, 2, 3});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path), std::string::npos);
  EXPECT_TRUE(ReadFile(path, SafetensorsBytes("{}", {})).ok());  // an empty checkpoint is valid
}

TEST(SafetensorsHostile, BadJson) {
  TempDir dir;
  const std::string p = dir.File("j.safetensors");
  ExpectError(p, "{\"a\":", 0, "not valid JSON");
  ExpectError(p, "[1,2]", 0, "not a JSON object");
  ExpectError(p, std::string(100000, '[') + std::string(100000, ']'), 0, "JSON object");
  ExpectError(p, R"({"a":5})", 0, "tensor 'a'");
  ExpectError(p, R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4, "dtype");
  ExpectError(p, R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4, "dtype");
  ExpectError(p, R"({"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", 4, "shape");
  ExpectError(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4, "data_offsets");
  ExpectError(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":{"x":1}}})", 4, "data_offsets");
}

TEST(SafetensorsHostile, ShapesOffsetsAndDtypes) {
  TempDir dir;
  const std::string p = dir.File("s.safetensors");
  ExpectError(p, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16, "tensor 'w'");
  ExpectError(p, R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", 16, "tensor 'w'");
  ExpectError(p, R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,16]}})", 16, "tensor 'w'");
  ExpectError(p, R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}})",
              16, "overflows");
  ExpectError(p, R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}})",
              16, "tensor 'w'");
  ExpectError(p, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", 16, "data_offsets");
  ExpectError(p, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}})", 16, "data_offsets");
  ExpectError(p, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 15, "past the data section");
  ExpectError(p, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[18446744073709551600,18446744073709551615]}})",
              16, "tensor 'w'");
  ExpectError(p,
              R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
              R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
              24, "overlap");
  ExpectError(p,
              R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
              R"("a":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})",
              32, "appears twice");
  ExpectError(p, R"({"w":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", 16, "I64",
              ErrorCode::kUnsupported);
  ExpectError(p, R"({"w":{"dtype":"Q9_X","shape":[2],"data_offsets":[0,16]}})", 16, "Q9_X",
              ErrorCode::kUnsupported);
  // F16 and BF16 are supported, scalars and empty tensors are legal.
  WeightMap w;
  WriteBytes(p, SafetensorsBytes(R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                                 R"("b":{"dtype":"BF16","shape":[],"data_offsets":[4,6]},)"
                                 R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[6,6]}})",
                                 std::vector<uint8_t>(6)));
  Status s = ReadSafetensors(p, &w);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(w.Find("h")->dtype, DType::kF16);
  EXPECT_EQ(w.Find("b")->dtype, DType::kBF16);
  EXPECT_EQ(w.Find("b")->numel(), 1);
  EXPECT_EQ(w.Find("e")->numel(), 0);
}

// A two-shard directory: "a" in shard 1, "b" in shard 2, with the given index text.
void WriteShardedDir(const TempDir& dir, const std::string& index) {
  const std::vector<uint8_t> data(16);
  WriteBytes(dir.File("s1.safetensors"),
             SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data));
  WriteBytes(dir.File("s2.safetensors"),
             SafetensorsBytes(R"({"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data));
  WriteText(dir.File("model.safetensors.index.json"), index);
}

TEST(SafetensorsDir, IndexMustAgreeWithShards) {
  TempDir dir;
  WeightMap ok;
  WriteShardedDir(dir, R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  ASSERT_TRUE(ReadSafetensorsDir(dir.path(), &ok).ok());
  EXPECT_EQ(ok.size(), 2u);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"weight_map":{"a":"s2.safetensors","b":"s1.safetensors"}})", "as stored in"},
      {R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})", "'b'"},
      {R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","c":"s2.safetensors"}})", "'c'"},
      {R"({"weight_map":{"a":"s1.safetensors","b":"missing.safetensors"}})", "missing.safetensors"},
      {R"({"weight_map":{"a":"../s1.safetensors"}})", "not a file in the model directory"},
      {R"({"weight_map":{"a":1}})", "'a'"},
      {R"({"weight_map":[]})", "weight_map"},
      {R"({"weight_map":)", "index.json"},
  };
  for (const auto& [index, what] : bad) {
    WriteShardedDir(dir, index);
    WeightMap w;
    Status s = ReadSafetensorsDir(dir.path(), &w);
    ASSERT_FALSE(s.ok()) << index;
    EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
  }
}

TEST(SafetensorsDir, MissingFilesAreNotFound) {
  TempDir dir;
  WeightMap w;
  Status s = ReadSafetensorsDir(dir.path(), &w);
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_NE(s.message().find(dir.path()), std::string::npos);
}

}  // namespace
}  // namespace fastgen
