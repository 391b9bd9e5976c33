// GGUF reader and writer on real files (llama.cpp's converter and llama-quantize output) and on
// writer round trips.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "io/gguf_writer.h"
#include "io/io_test_util.h"

namespace fastgen {
namespace {

using testing::TempDir;

const std::string kShared = FASTGEN_SHARED_DIR;

TEST(Gguf, ReadsLlamaF32Metadata) {
  auto f = GgufFile::Open(kShared + "/gguf/llama.f32.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->GetString("general.architecture").value(), std::optional<std::string>("llama"));
  EXPECT_EQ(f->GetInt("llama.block_count").value(), std::optional<int64_t>(2));
  EXPECT_EQ(f->GetInt("llama.embedding_length").value(), std::optional<int64_t>(64));
  EXPECT_EQ(f->GetInt("llama.attention.head_count_kv").value(), std::optional<int64_t>(2));
  auto eps = f->GetFloat("llama.attention.layer_norm_rms_epsilon");
  ASSERT_TRUE(eps.ok() && eps->has_value());
  EXPECT_NEAR(**eps, 1e-5, 1e-10);
  // An integer key read as a float converts; an absent key is nullopt, not an error.
  EXPECT_EQ(f->GetFloat("llama.block_count").value(), std::optional<double>(2.0));
  EXPECT_FALSE(f->GetInt("no.such.key").value().has_value());

  auto tokens = f->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok() && tokens->has_value());
  ASSERT_EQ((*tokens)->size(), 256u);
  EXPECT_EQ((**tokens)[0], "!");
  auto types = f->GetIntArray("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok() && types->has_value());
  EXPECT_EQ((*types)->size(), 256u);
  EXPECT_EQ(f->Find("tokenizer.ggml.token_type")->array_type, GgufType::kInt32);
}

TEST(Gguf, TypedGettersNameTheKeyOnMismatch) {
  auto f = GgufFile::Open(kShared + "/gguf/llama.f32.gguf");
  ASSERT_TRUE(f.ok());
  auto s = f->GetInt("general.architecture");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("general.architecture"), std::string::npos);
  EXPECT_NE(s.status().message().find("string"), std::string::npos);
  EXPECT_FALSE(f->GetString("llama.block_count").ok());
  EXPECT_FALSE(f->GetBool("llama.block_count").ok());
  EXPECT_FALSE(f->GetStringArray("tokenizer.ggml.token_type").ok());
  EXPECT_FALSE(f->GetIntArray("tokenizer.ggml.tokens").ok());
  EXPECT_FALSE(f->GetFloatArray("general.name").ok());
}

TEST(Gguf, LlamaF32TensorsBecomeViews) {
  auto f = GgufFile::Open(kShared + "/gguf/llama.f32.gguf");
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->tensor_infos().size(), 21u);
  WeightMap w;
  ASSERT_TRUE(f->AddTensorsTo(&w).ok());
  ASSERT_EQ(w.size(), 21u);
  const TensorView* embd = w.Find("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->dtype, DType::kF32);
  EXPECT_EQ(embd->shape, (std::vector<int64_t>{256, 64}));  // [vocab, d_model]
  EXPECT_EQ(embd->nbytes, 256u * 64u * 4u);
  const TensorView* k = w.Find("blk.0.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->shape, (std::vector<int64_t>{32, 64}));  // [n_kv_heads * head_dim, d_model]
  const TensorView* norm = w.Find("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->shape, (std::vector<int64_t>{64}));
  // RMSNorm weights of a freshly initialised model are near 1 and finite.
  float v;
  std::memcpy(&v, norm->data, 4);
  EXPECT_TRUE(std::isfinite(v));
  // Loading the same file twice into one map is a duplicate-tensor error.
  Status again = f->AddTensorsTo(&w);
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.message().find("already loaded"), std::string::npos) << again.message();
}

TEST(Gguf, ReadsEveryKQuantFileWithItsTensorTypes) {
  const std::vector<std::pair<std::string, std::set<DType>>> files = {
      {"kq.q2_k", {DType::kF32, DType::kQ2_K, DType::kQ3_K, DType::kQ6_K}},
      {"kq.q3_k_m", {DType::kF32, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}},
      {"kq.q4_k_m", {DType::kF32, DType::kQ4_K, DType::kQ6_K}},
      {"kq.q5_k_m", {DType::kF32, DType::kQ5_K, DType::kQ6_K}},
      {"kq.q6_k", {DType::kF32, DType::kQ6_K}},
  };
  for (const auto& [name, dtypes] : files) {
    SCOPED_TRACE(name);
    auto f = GgufFile::Open(kShared + "/gguf/kquant/" + name + ".gguf");
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ(f->GetString("general.architecture").value(), std::optional<std::string>("llama"));
    EXPECT_EQ(f->GetInt("llama.embedding_length").value(), std::optional<int64_t>(256));
    auto merges = f->GetStringArray("tokenizer.ggml.merges");
    ASSERT_TRUE(merges.ok() && merges->has_value());
    EXPECT_GT((*merges)->size(), 1000u);
    WeightMap w;
    ASSERT_TRUE(f->AddTensorsTo(&w).ok());
    std::set<DType> seen;
    for (const auto& [tname, t] : w.tensors()) seen.insert(t.dtype);
    EXPECT_EQ(seen, dtypes);
    const TensorView* out = w.Find("output.weight");
    ASSERT_NE(out, nullptr);
    EXPECT_EQ(out->shape, (std::vector<int64_t>{8192, 256}));
    EXPECT_EQ(out->nbytes, *RowBytes(out->dtype, 256) * 8192);
  }
}

TEST(Gguf, ReadsOtherRealFiles) {
  for (const char* name : {"fg-draft.bf16.gguf", "fg-draft.q8_0.gguf", "fg-draft.q4_0.gguf",
                           "llama_tied_rope500k.f32.gguf", "mistral.f32.gguf"}) {
    SCOPED_TRACE(name);
    auto f = GgufFile::Open(kShared + "/gguf/" + name);
    ASSERT_TRUE(f.ok()) << f.status().message();
    WeightMap w;
    EXPECT_TRUE(f->AddTensorsTo(&w).ok());
    EXPECT_GT(w.size(), 5u);
  }
}

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensors) {
  TempDir dir;
  GgufWriter wr;
  ASSERT_TRUE(wr.SetAlignment(64).ok());
  ASSERT_TRUE(wr.AddString("general.architecture", "llama").ok());
  ASSERT_TRUE(wr.AddInt("u8", GgufType::kUint8, 255).ok());
  ASSERT_TRUE(wr.AddInt("i8", GgufType::kInt8, -128).ok());
  ASSERT_TRUE(wr.AddInt("u16", GgufType::kUint16, 65535).ok());
  ASSERT_TRUE(wr.AddInt("i16", GgufType::kInt16, -32768).ok());
  ASSERT_TRUE(wr.AddUint32("u32", 4000000000u).ok());
  ASSERT_TRUE(wr.AddInt("i32", GgufType::kInt32, -2000000000).ok());
  ASSERT_TRUE(wr.AddInt("u64", GgufType::kUint64, int64_t{1} << 62).ok());
  ASSERT_TRUE(wr.AddInt("i64", GgufType::kInt64, -(int64_t{1} << 62)).ok());
  ASSERT_TRUE(wr.AddFloat32("f32", 0.5f).ok());
  ASSERT_TRUE(wr.AddFloat("f64", GgufType::kFloat64, 1e300).ok());
  ASSERT_TRUE(wr.AddBool("flag", true).ok());
  ASSERT_TRUE(wr.AddStringArray("strs", {"a", "", "ünïcode"}).ok());
  ASSERT_TRUE(wr.AddIntArray("ints", GgufType::kInt16, {-1, 2, 3}).ok());
  ASSERT_TRUE(wr.AddIntArray("empty", GgufType::kUint8, {}).ok());
  ASSERT_TRUE(wr.AddFloatArray("floats", GgufType::kFloat32, {0.25, -1.5}).ok());
  ASSERT_TRUE(wr.AddBoolArray("bools", {true, false, true}).ok());
  // The writer refuses what it could not write faithfully.
  EXPECT_FALSE(wr.AddString("u8", "again").ok());
  EXPECT_FALSE(wr.AddInt("big", GgufType::kUint8, 256).ok());
  EXPECT_FALSE(wr.AddIntArray("neg", GgufType::kUint32, {-1}).ok());

  std::vector<float> a(3 * 32);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) - 7.0f;
  std::vector<uint16_t> h(32, 0x3c00);  // f16 ones
  std::vector<uint8_t> q(34 * 2, 1);    // two Q8_0 blocks
  ASSERT_TRUE(wr.AddTensor("a", DType::kF32, {3, 32}, a.data(), a.size() * 4).ok());
  ASSERT_TRUE(wr.AddTensor("h", DType::kF16, {32}, h.data(), h.size() * 2).ok());
  ASSERT_TRUE(wr.AddTensor("q", DType::kQ8_0, {2, 32}, q.data(), q.size()).ok());
  EXPECT_FALSE(wr.AddTensor("bad", DType::kQ8_0, {2, 32}, q.data(), 10).ok());
  EXPECT_FALSE(wr.AddTensor("odd", DType::kQ8_0, {1, 16}, q.data(), 17).ok());
  EXPECT_FALSE(wr.AddTensor("a", DType::kF32, {1}, a.data(), 4).ok());

  const std::string path = dir.File("rt.gguf");
  ASSERT_TRUE(wr.WriteFile(path).ok());
  EXPECT_EQ(std::filesystem::file_size(path), wr.Serialize().size());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(*f->GetInt("u8").value(), 255);
  EXPECT_EQ(*f->GetInt("i8").value(), -128);
  EXPECT_EQ(*f->GetInt("u16").value(), 65535);
  EXPECT_EQ(*f->GetInt("i16").value(), -32768);
  EXPECT_EQ(*f->GetInt("u32").value(), 4000000000LL);
  EXPECT_EQ(*f->GetInt("i32").value(), -2000000000LL);
  EXPECT_EQ(*f->GetInt("u64").value(), int64_t{1} << 62);
  EXPECT_EQ(*f->GetInt("i64").value(), -(int64_t{1} << 62));
  EXPECT_EQ(f->Find("u64")->type, GgufType::kUint64);
  EXPECT_EQ(*f->GetFloat("f32").value(), 0.5);
  EXPECT_EQ(*f->GetFloat("f64").value(), 1e300);
  EXPECT_EQ(*f->GetBool("flag").value(), true);
  EXPECT_EQ(*f->GetStringArray("strs").value(), (std::vector<std::string>{"a", "", "ünïcode"}));
  EXPECT_EQ(*f->GetIntArray("ints").value(), (std::vector<int64_t>{-1, 2, 3}));
  EXPECT_EQ(f->Find("ints")->array_type, GgufType::kInt16);
  EXPECT_TRUE(f->GetIntArray("empty").value()->empty());
  EXPECT_EQ(*f->GetFloatArray("floats").value(), (std::vector<double>{0.25, -1.5}));
  EXPECT_EQ(std::get<std::vector<bool>>(f->Find("bools")->value),
            (std::vector<bool>{true, false, true}));

  WeightMap w;
  ASSERT_TRUE(f->AddTensorsTo(&w).ok());
  const TensorView* ta = w.Find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{3, 32}));
  EXPECT_EQ(std::memcmp(ta->data, a.data(), a.size() * 4), 0);
  for (const auto& [name, t] : w.tensors())
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u) << name;  // mmap is page-aligned
  EXPECT_EQ(w.Find("q")->dtype, DType::kQ8_0);
  EXPECT_EQ(w.Find("h")->nbytes, 64u);
}

TEST(GgufWriter, UnsupportedTypeFailsOnlyWhenTensorsAreLoaded) {
  TempDir dir;
  GgufWriter wr;
  ASSERT_TRUE(wr.AddString("general.architecture", "llama").ok());
  std::vector<uint8_t> q5_1(24 * 2, 0);  // two Q5_1 blocks (ggml type 7)
  ASSERT_TRUE(wr.AddTensorRaw("blk.0.ffn_up.weight", 7, {2, 32}, q5_1.data(), q5_1.size()).ok());
  std::vector<uint8_t> iq4(136, 0);  // one IQ4_XS block (ggml type 23)
  ASSERT_TRUE(wr.AddTensorRaw("iq", 23, {256}, iq4.data(), iq4.size()).ok());
  const std::string path = dir.File("q5_1.gguf");
  ASSERT_TRUE(wr.WriteFile(path).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();  // metadata stays readable
  EXPECT_EQ(*f->GetString("general.architecture").value(), "llama");
  WeightMap w;
  Status s = f->AddTensorsTo(&w);
  EXPECT_EQ(s.code(), ErrorCode::kUnsupported);
  EXPECT_NE(s.message().find("blk.0.ffn_up.weight"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("Q5_1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_EQ(w.size(), 0u);  // nothing half-loaded
}

TEST(Gguf, TypeTables) {
  EXPECT_EQ(GgmlTypeName(7), "Q5_1");
  EXPECT_EQ(GgmlTypeName(23), "IQ4_XS");
  EXPECT_EQ(GgmlTypeName(42), "type 42");
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ2_K,
                  DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kI32}) {
    EXPECT_EQ(DTypeFromGgml(GgmlTypeOf(t)), t);
    auto layout = GgmlLayout(GgmlTypeOf(t));
    ASSERT_TRUE(layout.has_value());
    EXPECT_EQ(layout->block_elems, Info(t).block_elems) << Name(t);
    EXPECT_EQ(layout->block_bytes, Info(t).block_bytes) << Name(t);
    EXPECT_EQ(GgmlTypeName(GgmlTypeOf(t)), Name(t));
  }
  EXPECT_FALSE(DTypeFromGgml(7).has_value());
}

}  // namespace
}  // namespace fastgen
