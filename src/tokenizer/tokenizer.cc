#include "tokenizer/tokenizer.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer_parts.h"
#include "tokenizer/unicode.h"

namespace fastgen {

Tokenizer::Tokenizer(std::unique_ptr<TokenizerParts> parts) : parts_(std::move(parts)) {}
Tokenizer::~Tokenizer() = default;

Expected<std::unique_ptr<Tokenizer>> Tokenizer::FromParts(TokenizerParts parts) {
  if (parts.model == nullptr) return InvalidArgument(parts.source + ": no model");
  for (const auto& t : parts.added_tokens) {
    if (t.id < 0) return InvalidArgument(parts.source + ": added token '" + t.content + "' has a negative id");
    if (t.content.empty()) return InvalidArgument(parts.source + ": added token " + std::to_string(t.id) + " is empty");
    // Matching works on bytes; a non-UTF-8 token could cut a character of the input in half.
    if (!tok::IsValidUtf8(t.content)) {
      return InvalidArgument(parts.source + ": added token " + std::to_string(t.id) + " is not valid UTF-8");
    }
  }
  auto owned = std::make_unique<TokenizerParts>(std::move(parts));
  owned->added.Build(std::move(owned->added_tokens), owned->normalizer.get());
  owned->added_tokens.clear();
  if (!owned->bos_id && owned->post_processor) owned->bos_id = owned->post_processor->LeadingId();
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(owned)));
}

namespace {

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool HasGgufMagic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char magic[4] = {};
  const size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::string_view(magic, 4) == "GGUF";
}

}  // namespace

Expected<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  std::string json_path = path;
  std::string config_path;
  if (IsDirectory(path)) {
    json_path = path + "/tokenizer.json";
    if (!FileExists(json_path)) return NotFound(path + ": directory has no tokenizer.json");
    config_path = path + "/tokenizer_config.json";
  } else if (!FileExists(path)) {
    return NotFound(path + ": no such file or directory");
  } else if (HasGgufMagic(path)) {
    FG_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::Open(path));
    return FromGguf(gguf);
  } else {
    // A tokenizer.json next to its tokenizer_config.json, as in a model directory.
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    config_path = dir + "/tokenizer_config.json";
  }
  // What the parsers reject in a file's contents is a bad input file (exit 2 in the CLI), not
  // a bad argument: the same kind of error as a corrupt model file.
  auto file_error = [](const Status& s) {
    return s.code() == ErrorCode::kInvalidArgument ? CorruptFile(s.message()) : s;
  };
  FG_ASSIGN_OR_RETURN(std::string text, ReadTextFile(json_path, kTokenizerFileLimit));
  auto tokenizer = FromJson(text, json_path);
  if (!tokenizer.ok()) return file_error(tokenizer.status());
  if (!config_path.empty() && FileExists(config_path)) {
    FG_ASSIGN_OR_RETURN(std::string config, ReadTextFile(config_path, kConfigFileLimit));
    const Status applied = (*tokenizer)->ApplyTokenizerConfig(config);
    if (!applied.ok()) return file_error(applied.WithContext(config_path));
  }
  return std::move(*tokenizer);
}

Status Tokenizer::ApplyTokenizerConfig(std::string_view config_json) {
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(config_json);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("not valid JSON: ") + e.what());
  }
  if (!config.is_object()) return InvalidArgument("not a JSON object");
  auto read = [&](const char* key, std::optional<int32_t>* out) -> Status {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) return Status::Ok();
    std::string name;
    if (it->is_string()) {
      name = it->get<std::string>();
    } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
      name = (*it)["content"].get<std::string>();
    } else {
      return InvalidArgument(std::string(key) + ": expected a string or an object with \"content\"");
    }
    auto id = TokenToId(name);
    if (!id) return InvalidArgument(std::string(key) + ": token '" + name + "' is not in the vocabulary");
    *out = id;
    return Status::Ok();
  };
  FG_RETURN_IF_ERROR(read("bos_token", &parts_->bos_id));
  FG_RETURN_IF_ERROR(read("eos_token", &parts_->eos_id));
  return Status::Ok();
}

Expected<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, const EncodeOptions& opts) const {
  std::string sanitized;
  if (!tok::IsValidUtf8(text)) {
    sanitized = tok::SanitizeUtf8(text);
    text = sanitized;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<tok::TextSegment> raw_segments, normalized_segments;
  tok::PreTokenized words;
  std::string piece;
  parts_->added.SplitRaw(text, opts.parse_special, &raw_segments);
  for (const tok::TextSegment& seg : raw_segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    piece.assign(text.substr(seg.begin, seg.end - seg.begin));
    if (parts_->normalizer) parts_->normalizer->Normalize(&piece);
    parts_->added.SplitNormalized(piece, opts.parse_special, &normalized_segments);
    for (const tok::TextSegment& nseg : normalized_segments) {
      if (nseg.id >= 0) {
        ids.push_back(nseg.id);
        continue;
      }
      if (nseg.begin == nseg.end) continue;
      words.Reset(piece.substr(nseg.begin, nseg.end - nseg.begin), seg.begin == 0 && nseg.begin == 0);
      if (parts_->pre_tokenizer) parts_->pre_tokenizer->PreTokenize(&words);
      const std::string_view all = words.text;
      for (const auto& [b, e] : words.spans) parts_->model->Tokenize(all.substr(b, e - b), &ids);
    }
  }
  if (opts.add_special_tokens && parts_->post_processor) parts_->post_processor->Process(&ids);
  return ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const tok::AddedToken* added = parts_->added.FindById(id)) {
      if (skip_special_tokens && added->special) continue;
      tokens.push_back(added->content);
    } else if (const std::string* t = parts_->model->IdToToken(id)) {
      tokens.push_back(*t);
    }
  }
  std::string text;
  if (parts_->decoder) {
    parts_->decoder->DecodeChain(&tokens);
    for (const std::string& t : tokens) text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text.push_back(' ');
      text += tokens[i];
    }
  }
  if (!tok::IsValidUtf8(text)) text = tok::SanitizeUtf8(text);
  return text;
}

const std::vector<std::string>& Tokenizer::TokenBytes() const {
  std::call_once(token_bytes_once_, [this] {
    const int32_t n = vocab_size();
    token_bytes_.assign(n, std::string());
    auto concat = [](const std::vector<std::string>& v) {
      std::string all;
      for (const std::string& t : v) all += t;
      return all;
    };
    // Decoders treat a sequence's first token specially (Metaspace drops its ▁, Strip its
    // leading space), so each token is decoded after an anchor, a one-letter token, and the
    // anchor's own text is cut off: what remains is the token's text mid-sequence.
    std::string anchor;
    for (int32_t id = 0; id < n && anchor.empty(); ++id) {
      const std::string* t = parts_->model->IdToToken(id);
      if (t && t->size() == 1 && std::isalpha(static_cast<unsigned char>((*t)[0])) && !parts_->added.FindById(id)) {
        anchor = *t;
      }
    }
    std::string anchor_text;
    if (parts_->decoder && !anchor.empty()) {
      std::vector<std::string> v{anchor};
      parts_->decoder->DecodeChainBytes(&v);
      anchor_text = concat(v);
    }
    for (int32_t id = 0; id < n; ++id) {
      // Added tokens decode through the chain like the others (Gemma's "▁▁" runs of spaces).
      const std::string* t = nullptr;
      if (const tok::AddedToken* added = parts_->added.FindById(id)) {
        if (added->special) continue;
        t = &added->content;
      } else {
        t = parts_->model->IdToToken(id);
      }
      if (!t) continue;
      if (!parts_->decoder) {
        token_bytes_[id] = " " + *t;  // Decode joins undecoded tokens with spaces
        continue;
      }
      std::vector<std::string> v;
      if (!anchor.empty()) v.push_back(anchor);
      v.push_back(*t);
      parts_->decoder->DecodeChainBytes(&v);
      std::string text = concat(v);
      if (!anchor.empty() && text.compare(0, anchor_text.size(), anchor_text) == 0) {
        token_bytes_[id] = text.substr(anchor_text.size());
      } else {
        v.assign(1, *t);
        parts_->decoder->DecodeChainBytes(&v);
        token_bytes_[id] = concat(v);
      }
    }
  });
  return token_bytes_;
}

int32_t Tokenizer::vocab_size() const {
  int32_t n = parts_->model->vocab_size();
  for (const auto& t : parts_->added.tokens()) n = std::max(n, t.id + 1);
  return n;
}

std::optional<int32_t> Tokenizer::bos_id() const { return parts_->bos_id; }
std::optional<int32_t> Tokenizer::eos_id() const { return parts_->eos_id; }

std::string Tokenizer::IdToToken(int32_t id) const {
  if (const tok::AddedToken* added = parts_->added.FindById(id)) return added->content;
  if (const std::string* t = parts_->model->IdToToken(id)) return *t;
  return std::string();
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (const tok::AddedToken* added = parts_->added.FindByContent(token)) return added->id;
  return parts_->model->TokenToId(token);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const tok::AddedToken* added = parts_->added.FindById(id);
  return added != nullptr && added->special;
}

const std::string& Tokenizer::source() const { return parts_->source; }

}  // namespace fastgen
