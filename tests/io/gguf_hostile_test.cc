// Hostile GGUF files: every truncation, random byte flips, absurd counts and lengths, and each
// structural lie a header can tell. The rule: a non-ok Status naming the file and the field or
// tensor at fault, never a crash (these run under ASan and UBSan in CI).
#include <gtest/gtest.h>

#include <vector>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/io_test_util.h"
#include "kernels/reference/dequant.h"

namespace fastgen {
namespace {

using testing::Bytes;
using testing::Rng;
using testing::TempDir;
using testing::WriteBytes;

// A small valid file with metadata of several types and tensors whose data ends exactly at
// the end of the file, so that every truncation removes bytes something needs.
std::vector<uint8_t> SmallValidGguf() {
  GgufWriter w;
  EXPECT_TRUE(w.AddString("general.architecture", "llama").ok());
  EXPECT_TRUE(w.AddUint32("llama.block_count", 2).ok());
  EXPECT_TRUE(w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f).ok());
  EXPECT_TRUE(w.AddStringArray("tokenizer.ggml.tokens", {"a", "bc", "<s>"}).ok());
  EXPECT_TRUE(w.AddIntArray("tokenizer.ggml.token_type", GgufType::kInt32, {1, 1, 3}).ok());
  EXPECT_TRUE(w.AddBoolArray("flags", {true, false}).ok());
  EXPECT_TRUE(w.AddFloatArray("scores", GgufType::kFloat64, {0.5, -0.5}).ok());
  std::vector<uint8_t> q8(34 * 2);
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> q4k(144);
  for (size_t i = 0; i < q4k.size(); ++i) q4k[i] = static_cast<uint8_t>(i * 13);
  std::vector<float> f(2 * 32, 0.25f);
  EXPECT_TRUE(w.AddTensor("q8", DType::kQ8_0, {1, 64}, q8.data(), q8.size()).ok());
  EXPECT_TRUE(w.AddTensor("q4k", DType::kQ4_K, {256}, q4k.data(), q4k.size()).ok());
  EXPECT_TRUE(w.AddTensor("f", DType::kF32, {2, 32}, f.data(), f.size() * 4).ok());  // 256 bytes
  return w.Serialize();
}

// Opens `path` and, if that works, loads and dequantizes every tensor: the whole path a model
// load takes. Returns the first error.
Status OpenAndTouchEverything(const std::string& path) {
  FG_ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(path));
  WeightMap w;
  FG_RETURN_IF_ERROR(f.AddTensorsTo(&w));
  for (const auto& [name, t] : w.tensors()) {
    std::vector<float> row(static_cast<size_t>(t.cols()));
    for (int64_t r = 0; r < t.rows(); ++r)
      kernels::reference::DequantizeRow(t.dtype, t.row(r), row.data(), t.cols());
  }
  return Status::Ok();
}

void ExpectFailsNaming(const std::string& path, const std::string& what) {
  auto f = GgufFile::Open(path);
  Status s = f.ok() ? f->AddTensorsTo(std::make_unique<WeightMap>().get()) : f.status();
  ASSERT_FALSE(s.ok()) << "expected an error about " << what;
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
}

TEST(GgufHostile, ValidBaseFileLoads) {
  TempDir dir;
  const std::string path = dir.File("ok.gguf");
  WriteBytes(path, SmallValidGguf());
  EXPECT_TRUE(OpenAndTouchEverything(path).ok());
}

TEST(GgufHostile, EveryTruncationFails) {
  TempDir dir;
  const std::vector<uint8_t> full = SmallValidGguf();
  const std::string path = dir.File("trunc.gguf");
  for (size_t len = 0; len < full.size(); ++len) {
    WriteBytes(path, std::vector<uint8_t>(full.begin(), full.begin() + static_cast<long>(len)));
    Status s = OpenAndTouchEverything(path);
    ASSERT_FALSE(s.ok()) << "truncated to " << len << " bytes";
    ASSERT_NE(s.message().find(path), std::string::npos) << s.message();
  }
}

TEST(GgufHostile, RandomByteFlipsNeverCrash) {
  TempDir dir;
  const std::vector<uint8_t> full = SmallValidGguf();
  const std::string path = dir.File("flip.gguf");
  int failures = 0;
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    Rng rng(seed);
    std::vector<uint8_t> b = full;
    const int flips = 1 + static_cast<int>(rng.Below(4));
    // Most flips land in the header, where parsing decisions are made.
    const size_t span = seed % 2 == 0 ? b.size() : std::min<size_t>(b.size(), 400);
    for (int i = 0; i < flips; ++i) b[rng.Below(span)] ^= static_cast<uint8_t>(1 + rng.Below(255));
    WriteBytes(path, b);
    Status s = OpenAndTouchEverything(path);
    if (!s.ok()) {
      ++failures;
      ASSERT_NE(s.message().find(path), std::string::npos) << "seed " << seed << ": " << s.message();
    }
  }
  EXPECT_GT(failures, 100);  // the flips do reach the header
}

TEST(GgufHostile, BadMagicAndVersion) {
  TempDir dir;
  const std::string path = dir.File("h.gguf");
  WriteBytes(path, Bytes().Raw("GGUX").U32(3).U64(0).U64(0).bytes());
  ExpectFailsNaming(path, "magic");
  WriteBytes(path, Bytes().GgufHeader(0, 0, /*version=*/1).bytes());
  ExpectFailsNaming(path, "version 1");
  WriteBytes(path, Bytes().GgufHeader(0, 0, /*version=*/4).bytes());
  ExpectFailsNaming(path, "version 4");
  WriteBytes(path, Bytes().GgufHeader(0, 0, /*version=*/2).bytes());
  EXPECT_TRUE(GgufFile::Open(path).ok());  // version 2 with nothing in it is fine
  WriteBytes(path, {});
  ExpectFailsNaming(path, "magic");
}

TEST(GgufHostile, AbsurdCountsAndLengths) {
  TempDir dir;
  const std::string path = dir.File("absurd.gguf");
  WriteBytes(path, Bytes().GgufHeader(uint64_t{1} << 40, 0).bytes());
  ExpectFailsNaming(path, "tensor_count");
  WriteBytes(path, Bytes().GgufHeader(0, uint64_t{1} << 40).bytes());
  ExpectFailsNaming(path, "metadata_kv_count");
  WriteBytes(path, Bytes().GgufHeader(0, 1).U64(uint64_t{1} << 63).Raw("key").Zeros(16).bytes());
  ExpectFailsNaming(path, "string length 9223372036854775808");
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("k").U32(8).U64(~uint64_t{0}).bytes());
  ExpectFailsNaming(path, "metadata key 'k'");
  // An array of 2^62 uint64 elements, and of 2^61 strings: refused before any allocation.
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("arr").U32(9).U32(10).U64(uint64_t{1} << 62).bytes());
  ExpectFailsNaming(path, "metadata key 'arr'");
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("arr").U32(9).U32(8).U64(uint64_t{1} << 61).Zeros(64).bytes());
  ExpectFailsNaming(path, "cannot fit");
  // A string element of an array whose length runs past the end.
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("arr").U32(9).U32(8).U64(2).Str("x").U64(1000).bytes());
  ExpectFailsNaming(path, "metadata key 'arr'");
}

TEST(GgufHostile, BadMetadataValues) {
  TempDir dir;
  const std::string path = dir.File("meta.gguf");
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("k").U32(99).U32(0).bytes());
  ExpectFailsNaming(path, "unknown value type 99");
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("nest").U32(9).U32(9).U64(1).U32(4).U64(1).U32(0).bytes());
  ExpectFailsNaming(path, "nested arrays");
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("b").U32(7).U8(2).bytes());
  ExpectFailsNaming(path, "bool");
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("big").U32(10).U64(~uint64_t{0}).bytes());
  ExpectFailsNaming(path, "out of range");
  WriteBytes(path, Bytes().GgufHeader(0, 2).Str("k").U32(4).U32(1).Str("k").U32(4).U32(2).bytes());
  ExpectFailsNaming(path, "duplicate key");
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("").U32(4).U32(1).bytes());
  ExpectFailsNaming(path, "empty key");
  for (uint32_t bad : {0u, 3u, 48u}) {
    WriteBytes(path, Bytes().GgufHeader(0, 1).Str("general.alignment").U32(4).U32(bad).bytes());
    ExpectFailsNaming(path, "general.alignment");
  }
  WriteBytes(path, Bytes().GgufHeader(0, 1).Str("general.alignment").U32(8).Str("32").bytes());
  ExpectFailsNaming(path, "general.alignment");
}

// One tensor info followed by padding and `data_bytes` of data.
std::vector<uint8_t> OneTensor(const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset,
                               size_t data_bytes) {
  Bytes b;
  b.GgufHeader(1, 0).TensorInfo("t", ne, type, offset).PadTo(32).Zeros(data_bytes);
  return b.bytes();
}

TEST(GgufHostile, BadTensorInfos) {
  TempDir dir;
  const std::string path = dir.File("tensor.gguf");
  WriteBytes(path, OneTensor({32}, 0, 0, 128));
  EXPECT_TRUE(OpenAndTouchEverything(path).ok());

  WriteBytes(path, Bytes().GgufHeader(1, 0).Str("t").U32(100).Zeros(900).bytes());
  ExpectFailsNaming(path, "n_dims is 100");
  WriteBytes(path, OneTensor({}, 0, 0, 128));
  ExpectFailsNaming(path, "n_dims is 0");
  WriteBytes(path, OneTensor({uint64_t{1} << 32, uint64_t{1} << 32, uint64_t{1} << 32}, 0, 0, 64));
  ExpectFailsNaming(path, "overflows");
  WriteBytes(path, OneTensor({uint64_t{1} << 61, 2}, 0, 0, 64));  // numel fits, bytes do not
  ExpectFailsNaming(path, "tensor 't'");
  WriteBytes(path, OneTensor({32, 0}, 0, 0, 128));
  ExpectFailsNaming(path, "dimension 1 is 0");
  WriteBytes(path, OneTensor({~uint64_t{0}}, 0, 0, 128));
  ExpectFailsNaming(path, "tensor 't'");
  WriteBytes(path, OneTensor({48}, 8, 0, 128));  // Q8_0 needs multiples of 32
  ExpectFailsNaming(path, "block size");
  WriteBytes(path, OneTensor({32}, 0, 4, 256));
  ExpectFailsNaming(path, "not a multiple of the alignment");
  WriteBytes(path, OneTensor({64}, 0, 0, 128));  // needs 256 bytes
  ExpectFailsNaming(path, "past the end");
  WriteBytes(path, OneTensor({32}, 0, uint64_t{1} << 63, 128));
  ExpectFailsNaming(path, "past the end");
  WriteBytes(path, OneTensor({32}, 42, 0, 128));
  ExpectFailsNaming(path, "unknown ggml type 42");
  WriteBytes(path, OneTensor({32}, 4, 0, 128));  // retired Q4_2
  ExpectFailsNaming(path, "unknown ggml type 4");
  WriteBytes(path, OneTensor({32}, 6, 0, 128));  // Q5_0: known, unsupported
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok());
  WeightMap w;
  Status s = f->AddTensorsTo(&w);
  EXPECT_EQ(s.code(), ErrorCode::kUnsupported);
  EXPECT_NE(s.message().find("Q5_0"), std::string::npos);
  // A name that runs past the end, and an empty name.
  WriteBytes(path, Bytes().GgufHeader(1, 0).U64(1000).Raw("t").Zeros(40).bytes());
  ExpectFailsNaming(path, "tensor info #0");
  WriteBytes(path, Bytes().GgufHeader(1, 0).TensorInfo("", {32}, 0, 0).PadTo(32).Zeros(128).bytes());
  ExpectFailsNaming(path, "empty tensor name");
}

TEST(GgufHostile, OverlapsDuplicatesAndMissingData) {
  TempDir dir;
  const std::string path = dir.File("overlap.gguf");
  WriteBytes(path, Bytes().GgufHeader(2, 0)
                       .TensorInfo("a", {64}, 0, 0)
                       .TensorInfo("b", {32}, 0, 128)  // a spans bytes [0, 256)
                       .PadTo(32).Zeros(512).bytes());
  ExpectFailsNaming(path, "overlap");
  WriteBytes(path, Bytes().GgufHeader(2, 0)
                       .TensorInfo("a", {32}, 0, 0)
                       .TensorInfo("a", {32}, 0, 128)
                       .PadTo(32).Zeros(256).bytes());
  ExpectFailsNaming(path, "duplicate tensor name");
  // Tensors present but the file ends inside the padding before the data section.
  Bytes b;
  b.GgufHeader(1, 0).TensorInfo("t", {32}, 0, 0);
  WriteBytes(path, b.bytes());
  ExpectFailsNaming(path, "data section");
  // Adjacent, non-overlapping tensors in reverse order are fine.
  WriteBytes(path, Bytes().GgufHeader(2, 0)
                       .TensorInfo("a", {32}, 0, 128)
                       .TensorInfo("b", {32}, 0, 0)
                       .PadTo(32).Zeros(256).bytes());
  EXPECT_TRUE(OpenAndTouchEverything(path).ok());
}

TEST(GgufHostile, MissingFileIsAnIoError) {
  auto f = GgufFile::Open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), ErrorCode::kIo);
  EXPECT_NE(f.status().message().find("/nonexistent/dir/model.gguf"), std::string::npos);
}

}  // namespace
}  // namespace fastgen
