#include "eval/kl_divergence.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <numeric>

namespace fastgen::eval {
namespace {

// File layout (little-endian, as every fastgen host is): "FGKLBASE", u32 version, the header
// fields in declaration order, then one record per scored position:
//   f64 log_sum_exp, f64 nll, i32 ids[top_k], f32 logits[top_k]
// (the log-sum-exp in double: in float its rounding alone would leave a spurious 1e-6 of mass
// outside a full top-k, worth 1e-5 of KL in the rest bucket).
constexpr char kMagic[8] = {'F', 'G', 'K', 'L', 'B', 'A', 'S', 'E'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 * 4 + 8 * 2;

size_t RecordBytes(uint32_t top_k) { return 16 + 8 * static_cast<size_t>(top_k); }

// Writes v at p and returns the byte after it.
template <typename T>
uint8_t* Put(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
  return p + sizeof(T);
}
template <typename T>
T Get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

struct MeanErr {
  double mean = 0, stderr_ = 0;
};
MeanErr MeanAndStderr(const std::vector<float>& x) {
  MeanErr m;
  if (x.empty()) return m;
  double s = 0, s2 = 0;
  for (float v : x) {
    s += v;
    s2 += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(x.size());
  m.mean = s / n;
  const double var = s2 / n - m.mean * m.mean;
  m.stderr_ = var > 0 && x.size() > 1 ? std::sqrt(var / (n - 1)) : 0;
  return m;
}

// Linear interpolation between the closest ranks of sorted values.
double Percentile(const std::vector<float>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double at = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(at);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (at - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace

uint64_t HashTokens(std::span<const int32_t> tokens) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : tokens) {
    uint32_t u = static_cast<uint32_t>(t);
    for (int i = 0; i < 4; ++i) {
      h ^= (u >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h;
}

// --- base file writer ---------------------------------------------------------------------

Expected<std::unique_ptr<KlBaseWriter>> KlBaseWriter::Create(const std::string& path, const KlFileHeader& h) {
  if (h.top_k == 0 || h.top_k > h.vocab)
    return InvalidArgument("--kl-top-k " + std::to_string(h.top_k) + " must be in [1, vocabulary size " +
                           std::to_string(h.vocab) + "]");
  std::unique_ptr<KlBaseWriter> w(new KlBaseWriter());
  w->path_ = path;
  w->h_ = h;
  w->f_ = std::fopen(path.c_str(), "wb");
  if (w->f_ == nullptr) return IoError(path + ": cannot write the KL-divergence base file: " + std::strerror(errno));
  uint8_t head[kHeaderBytes];
  std::memcpy(head, kMagic, 8);
  uint8_t* p = Put(head + 8, kVersion);
  p = Put(p, h.vocab);
  p = Put(p, h.ctx);
  p = Put(p, h.chunks);
  p = Put(p, h.top_k);
  p = Put(p, h.positions);
  Put(p, h.token_hash);
  if (std::fwrite(head, 1, kHeaderBytes, w->f_) != kHeaderBytes)
    return IoError(path + ": write failed: " + std::strerror(errno));
  w->order_.resize(h.vocab);
  w->record_.resize(RecordBytes(h.top_k));
  return w;
}

KlBaseWriter::~KlBaseWriter() {
  if (f_ != nullptr) std::fclose(f_);
}

Status KlBaseWriter::Add(const ScoredPosition& p) {
  if (p.logits.size() != h_.vocab) return Internal("KL base: a logits row of the wrong size");
  if (written_ >= h_.positions) return Internal("KL base: more positions than the header promised");
  std::iota(order_.begin(), order_.end(), 0);
  const auto& lg = p.logits;
  std::partial_sort(order_.begin(), order_.begin() + h_.top_k, order_.end(), [&](int32_t a, int32_t b) {
    return lg[static_cast<size_t>(a)] > lg[static_cast<size_t>(b)] ||
           (lg[static_cast<size_t>(a)] == lg[static_cast<size_t>(b)] && a < b);
  });
  uint8_t* out = Put(record_.data(), p.log_sum_exp);
  out = Put(out, p.nll);
  for (uint32_t i = 0; i < h_.top_k; ++i) out = Put(out, order_[i]);
  for (uint32_t i = 0; i < h_.top_k; ++i) out = Put(out, lg[static_cast<size_t>(order_[i])]);
  if (std::fwrite(record_.data(), 1, record_.size(), f_) != record_.size())
    return IoError(path_ + ": write failed: " + std::strerror(errno));
  ++written_;
  return Status::Ok();
}

Status KlBaseWriter::Finish() {
  if (written_ != h_.positions)
    return Internal("KL base: " + std::to_string(written_) + " positions written of " + std::to_string(h_.positions));
  const int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) return IoError(path_ + ": closing failed: " + std::strerror(errno));
  return Status::Ok();
}

// --- comparison -------------------------------------------------------------------------------

Expected<std::unique_ptr<KlComparer>> KlComparer::Open(const std::string& path) {
  std::unique_ptr<KlComparer> c(new KlComparer());
  c->path_ = path;
  c->f_ = std::fopen(path.c_str(), "rb");
  if (c->f_ == nullptr) return NotFound(path + ": cannot open the KL-divergence base file: " + std::strerror(errno));
  uint8_t head[kHeaderBytes];
  if (std::fread(head, 1, kHeaderBytes, c->f_) != kHeaderBytes || std::memcmp(head, kMagic, 8) != 0)
    return CorruptFile(path + ": not a fastgen KL-divergence base file (write one with --kl-divergence-base)");
  if (Get<uint32_t>(head + 8) != kVersion)
    return Unsupported(path + ": KL-divergence base file version " + std::to_string(Get<uint32_t>(head + 8)) +
                       " (this fastgen reads version " + std::to_string(kVersion) + ")");
  KlFileHeader& h = c->h_;
  h.vocab = Get<uint32_t>(head + 12);
  h.ctx = Get<uint32_t>(head + 16);
  h.chunks = Get<uint32_t>(head + 20);
  h.top_k = Get<uint32_t>(head + 24);
  h.positions = Get<uint64_t>(head + 28);
  h.token_hash = Get<uint64_t>(head + 36);
  if (h.top_k == 0 || h.top_k > h.vocab || h.ctx < 4 || h.positions != uint64_t{h.chunks} * (h.ctx - h.ctx / 2 - 1))
    return CorruptFile(path + ": inconsistent header (vocab " + std::to_string(h.vocab) + ", top_k " +
                       std::to_string(h.top_k) + ", ctx " + std::to_string(h.ctx) + ", chunks " +
                       std::to_string(h.chunks) + ", positions " + std::to_string(h.positions) + ")");
  // No positions would leave the record size unchecked by the file's (a header promising a huge
  // top_k over zero chunks must not allocate it), and a base without positions compares nothing.
  if (h.positions == 0) return CorruptFile(path + ": the base holds no scored positions (0 chunks)");
  // The file must hold every record it promises: a truncated base would otherwise fail midway.
  if (std::fseek(c->f_, 0, SEEK_END) != 0) return IoError(path + ": cannot seek");
  const long size = std::ftell(c->f_);
  const uint64_t record = RecordBytes(h.top_k);
  if (h.positions > (UINT64_MAX - kHeaderBytes) / record)
    return CorruptFile(path + ": a header promising " + std::to_string(h.positions) + " positions");
  const uint64_t want = kHeaderBytes + h.positions * record;
  if (size < 0 || static_cast<uint64_t>(size) != want)
    return CorruptFile(path + ": " + std::to_string(size) + " bytes where the header promises " + std::to_string(want));
  std::fseek(c->f_, static_cast<long>(kHeaderBytes), SEEK_SET);
  c->record_.resize(RecordBytes(h.top_k));
  return c;
}

KlComparer::~KlComparer() {
  if (f_ != nullptr) std::fclose(f_);
}

Status KlComparer::CheckMatches(const KlFileHeader& run) const {
  auto differs = [&](const char* what, uint64_t base, uint64_t now) {
    return InvalidArgument(path_ + ": the base was computed with " + what + " " + std::to_string(base) +
                           ", this run has " + std::to_string(now) + ": run with the base's -c, --chunks and text");
  };
  if (run.vocab != h_.vocab) return differs("a vocabulary of", h_.vocab, run.vocab);
  if (run.ctx != h_.ctx) return differs("-c", h_.ctx, run.ctx);
  if (run.chunks != h_.chunks) return differs("chunks:", h_.chunks, run.chunks);
  if (run.token_hash != h_.token_hash)
    return InvalidArgument(path_ + ": the base was computed over other tokens (another text or tokenizer)");
  return Status::Ok();
}

double KlComparer::Divergence(const KlBaseRecord& base, std::span<const float> logits, double log_sum_exp) {
  double kl = 0, p_top = 0, q_top = 0;
  for (size_t i = 0; i < base.ids.size(); ++i) {
    const double lp = static_cast<double>(base.logits[i]) - base.log_sum_exp;
    const double lq = static_cast<double>(logits[static_cast<size_t>(base.ids[i])]) - log_sum_exp;
    const double p = std::exp(lp);
    kl += p * (lp - lq);
    p_top += p;
    q_top += std::exp(lq);
  }
  const double p_rest = 1 - p_top, q_rest = std::max(1 - q_top, 1e-30);
  if (p_rest > 1e-12) kl += p_rest * (std::log(p_rest) - std::log(q_rest));
  return std::max(kl, 0.0);
}

Status KlComparer::Add(const ScoredPosition& p) {
  if (p.logits.size() != h_.vocab) return Internal("KL compare: a logits row of the wrong size");
  if (read_ >= h_.positions) return Internal("KL compare: more positions than the base file holds");
  if (std::fread(record_.data(), 1, record_.size(), f_) != record_.size())
    return IoError(path_ + ": read failed at position " + std::to_string(read_));
  ++read_;
  const uint8_t* r = record_.data();
  KlBaseRecord b;
  b.log_sum_exp = Get<double>(r);
  b.nll = Get<double>(r + 8);
  b.ids = std::span<const int32_t>(reinterpret_cast<const int32_t*>(r + 16), h_.top_k);
  b.logits = std::span<const float>(reinterpret_cast<const float*>(r + 16 + 4 * size_t{h_.top_k}), h_.top_k);
  for (int32_t id : b.ids)
    if (id < 0 || static_cast<uint32_t>(id) >= h_.vocab)
      return CorruptFile(path_ + ": token id " + std::to_string(id) + " outside the vocabulary at position " +
                         std::to_string(read_ - 1));
  if (!std::isfinite(b.log_sum_exp) || !std::isfinite(b.nll))
    return CorruptFile(path_ + ": a non-finite value at position " + std::to_string(read_ - 1));
  kld_.push_back(static_cast<float>(Divergence(b, p.logits, p.log_sum_exp)));
  const size_t argmax = static_cast<size_t>(std::max_element(p.logits.begin(), p.logits.end()) - p.logits.begin());
  same_top_ += static_cast<int32_t>(argmax) == b.ids[0];
  d_nll_.push_back(static_cast<float>(p.nll - b.nll));
  d_p_.push_back(static_cast<float>(std::exp(-p.nll) - std::exp(-b.nll)));
  nll_sum_ += p.nll;
  nll_base_sum_ += b.nll;
  return Status::Ok();
}

KlStats KlComparer::Finish() const {
  KlStats s;
  s.top_k = static_cast<int>(h_.top_k);
  s.positions = static_cast<int64_t>(kld_.size());
  if (kld_.empty()) return s;
  const double n = static_cast<double>(s.positions);
  s.ppl = std::exp(nll_sum_ / n);
  s.ppl_base = std::exp(nll_base_sum_ / n);
  const MeanErr ratio = MeanAndStderr(d_nll_);
  s.ln_ppl_ratio = ratio.mean;
  s.ln_ppl_ratio_stderr = ratio.stderr_;
  s.ppl_ratio = std::exp(ratio.mean);
  s.ppl_ratio_stderr = s.ppl_ratio * ratio.stderr_;
  const MeanErr kld = MeanAndStderr(kld_);
  s.kld_mean = kld.mean;
  s.kld_stderr = kld.stderr_;
  std::vector<float> sorted = kld_;
  std::sort(sorted.begin(), sorted.end());
  s.kld_median = Percentile(sorted, 0.5);
  s.kld_p90 = Percentile(sorted, 0.9);
  s.kld_p99 = Percentile(sorted, 0.99);
  s.kld_max = sorted.back();
  s.same_top = static_cast<double>(same_top_) / n;
  s.same_top_stderr = s.positions > 1 ? std::sqrt(s.same_top * (1 - s.same_top) / (n - 1)) : 0;
  const MeanErr dp = MeanAndStderr(d_p_);
  s.delta_p_mean = dp.mean;
  s.delta_p_stderr = dp.stderr_;
  return s;
}

}  // namespace fastgen::eval
