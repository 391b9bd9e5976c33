// Loading a Hugging Face tokenizer.json. Every component is parsed with the path of the JSON
// field it came from, so an unsupported or malformed file is reported as, for example,
// "tokenizer.json: pre_tokenizer.pretokenizers[0].behavior: unknown value 'Foo'".
#include <cstdint>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_parts.h"
#include "tokenizer/unicode.h"

namespace fastgen {
namespace {

using json = nlohmann::json;

Status FieldError(const std::string& path, const std::string& what) { return InvalidArgument(path + ": " + what); }

std::string Join(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }

Expected<std::string> GetString(const json& obj, const char* key, const std::string& path,
                                std::optional<std::string> fallback = std::nullopt) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (fallback) return *fallback;
    return FieldError(Join(path, key), "missing");
  }
  if (!it->is_string()) return FieldError(Join(path, key), "expected a string");
  return it->get<std::string>();
}

Expected<std::optional<std::string>> GetOptionalString(const json& obj, const char* key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return FieldError(Join(path, key), "expected a string or null");
  return std::optional<std::string>(it->get<std::string>());
}

Expected<bool> GetBool(const json& obj, const char* key, const std::string& path, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return FieldError(Join(path, key), "expected true or false");
  return it->get<bool>();
}

Expected<int64_t> GetInt(const json& obj, const char* key, const std::string& path, std::optional<int64_t> fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (fallback) return *fallback;
    return FieldError(Join(path, key), "missing");
  }
  if (!it->is_number_integer()) return FieldError(Join(path, key), "expected an integer");
  return it->get<int64_t>();
}

Expected<const json*> GetArray(const json& obj, const char* key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return FieldError(Join(path, key), "expected an array");
  return &*it;
}

// {"String": "..."} or {"Regex": "..."}, as used by Split, Replace and the Replace decoder.
Expected<tok::Regex> ParsePattern(const json& obj, const std::string& path) {
  const std::string p = Join(path, "pattern");
  auto it = obj.find("pattern");
  if (it == obj.end() || !it->is_object()) return FieldError(p, "expected {\"String\": ...} or {\"Regex\": ...}");
  if (auto s = it->find("String"); s != it->end() && s->is_string()) {
    return tok::Regex::Literal(s->get<std::string>());
  }
  if (auto r = it->find("Regex"); r != it->end() && r->is_string()) {
    auto re = tok::Regex::Compile(r->get<std::string>());
    if (!re.ok()) return re.status().WithContext(p + ".Regex");
    return re;
  }
  return FieldError(p, "expected {\"String\": ...} or {\"Regex\": ...}");
}

Expected<std::string> GetType(const json& obj, const std::string& path) {
  if (!obj.is_object()) return FieldError(path, "expected an object");
  return GetString(obj, "type", path);
}

Expected<tok::PrependScheme> ParsePrependScheme(const json& obj, const std::string& path) {
  auto it = obj.find("prepend_scheme");
  if (it != obj.end() && !it->is_null()) {
    if (!it->is_string()) return FieldError(Join(path, "prepend_scheme"), "expected a string");
    const std::string s = it->get<std::string>();
    if (s == "always") return tok::PrependScheme::kAlways;
    if (s == "first") return tok::PrependScheme::kFirst;
    if (s == "never") return tok::PrependScheme::kNever;
    return FieldError(Join(path, "prepend_scheme"), "unknown value '" + s + "'");
  }
  // Files written before prepend_scheme existed carry add_prefix_space instead.
  FG_ASSIGN_OR_RETURN(bool add_prefix_space, GetBool(obj, "add_prefix_space", path, true));
  return add_prefix_space ? tok::PrependScheme::kAlways : tok::PrependScheme::kNever;
}

Expected<std::unique_ptr<tok::Normalizer>> ParseNormalizer(const json& obj, const std::string& path) {
  FG_ASSIGN_OR_RETURN(std::string type, GetType(obj, path));
  if (type == "NFC") return tok::MakeUnicodeNormalizer(tok::UnicodeForm::kNfc);
  if (type == "NFD") return tok::MakeUnicodeNormalizer(tok::UnicodeForm::kNfd);
  if (type == "NFKC") return tok::MakeUnicodeNormalizer(tok::UnicodeForm::kNfkc);
  if (type == "NFKD") return tok::MakeUnicodeNormalizer(tok::UnicodeForm::kNfkd);
  if (type == "Lowercase") return tok::MakeLowercaseNormalizer();
  if (type == "StripAccents") return tok::MakeStripAccentsNormalizer();
  if (type == "ByteLevel") return tok::MakeByteLevelNormalizer();
  if (type == "Prepend") {
    FG_ASSIGN_OR_RETURN(std::string prepend, GetString(obj, "prepend", path));
    return tok::MakePrependNormalizer(std::move(prepend));
  }
  if (type == "Replace") {
    FG_ASSIGN_OR_RETURN(tok::Regex pattern, ParsePattern(obj, path));
    FG_ASSIGN_OR_RETURN(std::string content, GetString(obj, "content", path));
    return tok::MakeReplaceNormalizer(std::move(pattern), std::move(content));
  }
  if (type == "Strip") {
    FG_ASSIGN_OR_RETURN(bool left, GetBool(obj, "strip_left", path, true));
    FG_ASSIGN_OR_RETURN(bool right, GetBool(obj, "strip_right", path, true));
    return tok::MakeStripNormalizer(left, right);
  }
  if (type == "Sequence") {
    FG_ASSIGN_OR_RETURN(const json* list, GetArray(obj, "normalizers", path));
    std::vector<std::unique_ptr<tok::Normalizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      FG_ASSIGN_OR_RETURN(auto part, ParseNormalizer((*list)[i], Join(path, "normalizers") + "[" + std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return tok::MakeSequenceNormalizer(std::move(parts));
  }
  return Unsupported(Join(path, "type") + ": normalizer '" + type + "' is not supported");
}

Expected<tok::SplitBehavior> ParseBehavior(const json& obj, const std::string& path, tok::SplitBehavior fallback) {
  auto it = obj.find("behavior");
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string()) return FieldError(Join(path, "behavior"), "expected a string");
  const std::string b = it->get<std::string>();
  if (b == "Removed") return tok::SplitBehavior::kRemoved;
  if (b == "Isolated") return tok::SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return tok::SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return tok::SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return tok::SplitBehavior::kContiguous;
  return FieldError(Join(path, "behavior"), "unknown value '" + b + "'");
}

Expected<std::unique_ptr<tok::PreTokenizer>> ParsePreTokenizer(const json& obj, const std::string& path) {
  FG_ASSIGN_OR_RETURN(std::string type, GetType(obj, path));
  if (type == "ByteLevel") {
    tok::ByteLevelOptions options;
    FG_ASSIGN_OR_RETURN(options.add_prefix_space, GetBool(obj, "add_prefix_space", path, true));
    FG_ASSIGN_OR_RETURN(options.use_regex, GetBool(obj, "use_regex", path, true));
    return tok::MakeByteLevelPreTokenizer(options);
  }
  if (type == "Split") {
    FG_ASSIGN_OR_RETURN(tok::Regex pattern, ParsePattern(obj, path));
    FG_ASSIGN_OR_RETURN(tok::SplitBehavior behavior, ParseBehavior(obj, path, tok::SplitBehavior::kIsolated));
    FG_ASSIGN_OR_RETURN(bool invert, GetBool(obj, "invert", path, false));
    return tok::MakeSplitPreTokenizer(std::move(pattern), behavior, invert);
  }
  if (type == "Metaspace") {
    tok::MetaspaceOptions options;
    FG_ASSIGN_OR_RETURN(options.replacement, GetString(obj, "replacement", path, std::string("\xE2\x96\x81")));
    FG_ASSIGN_OR_RETURN(options.prepend_scheme, ParsePrependScheme(obj, path));
    FG_ASSIGN_OR_RETURN(options.split, GetBool(obj, "split", path, true));
    if (options.replacement.empty()) return FieldError(Join(path, "replacement"), "must be one character");
    return tok::MakeMetaspacePreTokenizer(options);
  }
  if (type == "Digits") {
    FG_ASSIGN_OR_RETURN(bool individual, GetBool(obj, "individual_digits", path, false));
    return tok::MakeDigitsPreTokenizer(individual);
  }
  if (type == "Punctuation") {
    FG_ASSIGN_OR_RETURN(tok::SplitBehavior behavior, ParseBehavior(obj, path, tok::SplitBehavior::kIsolated));
    return tok::MakePunctuationPreTokenizer(behavior);
  }
  if (type == "Whitespace") return tok::MakeWhitespacePreTokenizer();
  if (type == "WhitespaceSplit") return tok::MakeWhitespaceSplitPreTokenizer();
  if (type == "BertPreTokenizer") return tok::MakeBertPreTokenizer();
  if (type == "CharDelimiterSplit") {
    FG_ASSIGN_OR_RETURN(std::string delimiter, GetString(obj, "delimiter", path));
    if (delimiter.empty() || !tok::IsValidUtf8(delimiter)) return FieldError(Join(path, "delimiter"), "must be one character");
    size_t pos = 0;
    return tok::MakeCharDelimiterPreTokenizer(tok::NextCodepoint(delimiter, &pos));
  }
  if (type == "Sequence") {
    FG_ASSIGN_OR_RETURN(const json* list, GetArray(obj, "pretokenizers", path));
    std::vector<std::unique_ptr<tok::PreTokenizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      FG_ASSIGN_OR_RETURN(auto part,
                          ParsePreTokenizer((*list)[i], Join(path, "pretokenizers") + "[" + std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return tok::MakeSequencePreTokenizer(std::move(parts));
  }
  return Unsupported(Join(path, "type") + ": pre-tokenizer '" + type + "' is not supported");
}

Expected<std::unique_ptr<tok::Decoder>> ParseDecoder(const json& obj, const std::string& path) {
  FG_ASSIGN_OR_RETURN(std::string type, GetType(obj, path));
  if (type == "ByteLevel") return tok::MakeByteLevelDecoder();
  if (type == "ByteFallback") return tok::MakeByteFallbackDecoder();
  if (type == "Fuse") return tok::MakeFuseDecoder();
  if (type == "Metaspace") {
    FG_ASSIGN_OR_RETURN(std::string replacement, GetString(obj, "replacement", path, std::string("\xE2\x96\x81")));
    FG_ASSIGN_OR_RETURN(tok::PrependScheme scheme, ParsePrependScheme(obj, path));
    return tok::MakeMetaspaceDecoder(std::move(replacement), scheme);
  }
  if (type == "Replace") {
    FG_ASSIGN_OR_RETURN(tok::Regex pattern, ParsePattern(obj, path));
    FG_ASSIGN_OR_RETURN(std::string content, GetString(obj, "content", path));
    return tok::MakeReplaceDecoder(std::move(pattern), std::move(content));
  }
  if (type == "Strip") {
    FG_ASSIGN_OR_RETURN(std::string content, GetString(obj, "content", path));
    FG_ASSIGN_OR_RETURN(int64_t start, GetInt(obj, "start", path, 0));
    FG_ASSIGN_OR_RETURN(int64_t stop, GetInt(obj, "stop", path, 0));
    if (start < 0 || stop < 0) return FieldError(path, "start and stop must not be negative");
    return tok::MakeStripDecoder(std::move(content), static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  if (type == "WordPiece") {
    FG_ASSIGN_OR_RETURN(std::string prefix, GetString(obj, "prefix", path, std::string("##")));
    FG_ASSIGN_OR_RETURN(bool cleanup, GetBool(obj, "cleanup", path, true));
    return tok::MakeWordPieceDecoder(std::move(prefix), cleanup);
  }
  if (type == "BPEDecoder") {
    FG_ASSIGN_OR_RETURN(std::string suffix, GetString(obj, "suffix", path, std::string("</w>")));
    return tok::MakeBpeSuffixDecoder(std::move(suffix));
  }
  if (type == "Sequence") {
    FG_ASSIGN_OR_RETURN(const json* list, GetArray(obj, "decoders", path));
    std::vector<std::unique_ptr<tok::Decoder>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      FG_ASSIGN_OR_RETURN(auto part, ParseDecoder((*list)[i], Join(path, "decoders") + "[" + std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return tok::MakeSequenceDecoder(std::move(parts));
  }
  return Unsupported(Join(path, "type") + ": decoder '" + type + "' is not supported");
}

// ["[SEP]", 102] as used by RobertaProcessing and BertProcessing.
Expected<int32_t> ParseTokenPair(const json& obj, const char* key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer() ||
      (*it)[1].get<int64_t>() < 0 || (*it)[1].get<int64_t>() > INT32_MAX) {
    return FieldError(Join(path, key), "expected [token, id] with a non-negative id");
  }
  return static_cast<int32_t>((*it)[1].get<int64_t>());
}

Expected<std::unique_ptr<tok::PostProcessor>> ParsePostProcessor(const json& obj, const std::string& path) {
  FG_ASSIGN_OR_RETURN(std::string type, GetType(obj, path));
  if (type == "ByteLevel") return tok::MakeIdentityProcessor();
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    FG_ASSIGN_OR_RETURN(int32_t cls, ParseTokenPair(obj, "cls", path));
    FG_ASSIGN_OR_RETURN(int32_t sep, ParseTokenPair(obj, "sep", path));
    return tok::MakeWrapProcessor({cls}, {sep});
  }
  if (type == "TemplateProcessing") {
    const std::string specials_path = Join(path, "special_tokens");
    auto specials = obj.find("special_tokens");
    if (specials == obj.end() || !specials->is_object()) return FieldError(specials_path, "expected an object");
    FG_ASSIGN_OR_RETURN(const json* single, GetArray(obj, "single", path));
    std::vector<tok::TemplatePiece> pieces;
    for (size_t i = 0; i < single->size(); ++i) {
      const std::string p = Join(path, "single") + "[" + std::to_string(i) + "]";
      const json& item = (*single)[i];
      if (!item.is_object()) return FieldError(p, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      if (auto seq = item.find("Sequence"); seq != item.end()) {
        pieces.push_back({true, {}});
        continue;
      }
      auto st = item.find("SpecialToken");
      if (st == item.end() || !st->is_object()) return FieldError(p, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      FG_ASSIGN_OR_RETURN(std::string name, GetString(*st, "id", p + ".SpecialToken"));
      auto def = specials->find(name);
      if (def == specials->end() || !def->is_object()) {
        return FieldError(p + ".SpecialToken.id", "'" + name + "' is not in " + specials_path);
      }
      FG_ASSIGN_OR_RETURN(const json* ids, GetArray(*def, "ids", specials_path + "." + name));
      tok::TemplatePiece piece;
      for (const json& id : *ids) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
          return FieldError(specials_path + "." + name + ".ids", "expected non-negative integer ids");
        }
        piece.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
      pieces.push_back(std::move(piece));
    }
    return tok::MakeTemplateProcessor(std::move(pieces));
  }
  if (type == "Sequence") {
    FG_ASSIGN_OR_RETURN(const json* list, GetArray(obj, "processors", path));
    std::vector<std::unique_ptr<tok::PostProcessor>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      FG_ASSIGN_OR_RETURN(auto part,
                          ParsePostProcessor((*list)[i], Join(path, "processors") + "[" + std::to_string(i) + "]"));
      parts.push_back(std::move(part));
    }
    return tok::MakeSequenceProcessor(std::move(parts));
  }
  return Unsupported(Join(path, "type") + ": post-processor '" + type + "' is not supported");
}

Expected<std::unique_ptr<tok::BpeModel>> ParseModel(const json& obj) {
  const std::string path = "model";
  if (!obj.is_object()) return FieldError(path, "expected an object");
  // Old files omit the type; a merges list identifies BPE.
  FG_ASSIGN_OR_RETURN(std::string type, GetString(obj, "type", path, std::string(obj.contains("merges") ? "BPE" : "")));
  if (type != "BPE") return Unsupported("model.type: model '" + type + "' is not supported (only BPE)");
  auto dropout = obj.find("dropout");
  if (dropout != obj.end() && !dropout->is_null()) {
    if (!dropout->is_number()) return FieldError("model.dropout", "expected a number or null");
    if (dropout->get<double>() > 0.0) {
      return Unsupported("model.dropout: BPE dropout makes encoding random and is not supported");
    }
  }
  auto vocab_it = obj.find("vocab");
  if (vocab_it == obj.end() || !vocab_it->is_object()) return FieldError("model.vocab", "expected an object");
  tok::TokenMap vocab;
  vocab.reserve(vocab_it->size());
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    if (!it.value().is_number_integer()) return FieldError("model.vocab." + it.key(), "expected an integer id");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > INT32_MAX) return FieldError("model.vocab." + it.key(), "id out of range");
    vocab.emplace(it.key(), static_cast<int32_t>(id));
  }
  std::vector<std::pair<std::string, std::string>> merges;
  auto merges_it = obj.find("merges");
  if (merges_it != obj.end() && !merges_it->is_null()) {
    if (!merges_it->is_array()) return FieldError("model.merges", "expected an array");
    merges.reserve(merges_it->size());
    for (size_t i = 0; i < merges_it->size(); ++i) {
      const json& m = (*merges_it)[i];
      const std::string p = "model.merges[" + std::to_string(i) + "]";
      if (m.is_string()) {
        // "a b": tokens never contain a space in this format, so exactly one separates them.
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          return FieldError(p, "expected \"left right\" with exactly one space");
        }
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        return FieldError(p, "expected \"left right\" or [left, right]");
      }
    }
  }
  tok::BpeOptions options;
  FG_ASSIGN_OR_RETURN(options.unk_token, GetOptionalString(obj, "unk_token", path));
  FG_ASSIGN_OR_RETURN(options.fuse_unk, GetBool(obj, "fuse_unk", path, false));
  FG_ASSIGN_OR_RETURN(options.byte_fallback, GetBool(obj, "byte_fallback", path, false));
  FG_ASSIGN_OR_RETURN(options.ignore_merges, GetBool(obj, "ignore_merges", path, false));
  FG_ASSIGN_OR_RETURN(auto prefix, GetOptionalString(obj, "continuing_subword_prefix", path));
  FG_ASSIGN_OR_RETURN(auto suffix, GetOptionalString(obj, "end_of_word_suffix", path));
  options.continuing_subword_prefix = prefix.value_or("");
  options.end_of_word_suffix = suffix.value_or("");
  FG_ASSIGN_OR_RETURN(tok::BpeModel model, tok::BpeModel::Create(std::move(vocab), merges, std::move(options)));
  return std::make_unique<tok::BpeModel>(std::move(model));
}

Expected<std::vector<tok::AddedToken>> ParseAddedTokens(const json& root) {
  std::vector<tok::AddedToken> out;
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return out;
  if (!it->is_array()) return FieldError("added_tokens", "expected an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& t = (*it)[i];
    const std::string p = "added_tokens[" + std::to_string(i) + "]";
    if (!t.is_object()) return FieldError(p, "expected an object");
    tok::AddedToken token;
    FG_ASSIGN_OR_RETURN(int64_t id, GetInt(t, "id", p, std::nullopt));
    if (id < 0 || id > INT32_MAX) return FieldError(p + ".id", "out of range");
    token.id = static_cast<int32_t>(id);
    FG_ASSIGN_OR_RETURN(token.content, GetString(t, "content", p));
    if (token.content.empty()) return FieldError(p + ".content", "must not be empty");
    FG_ASSIGN_OR_RETURN(token.special, GetBool(t, "special", p, false));
    FG_ASSIGN_OR_RETURN(token.lstrip, GetBool(t, "lstrip", p, false));
    FG_ASSIGN_OR_RETURN(token.rstrip, GetBool(t, "rstrip", p, false));
    FG_ASSIGN_OR_RETURN(token.single_word, GetBool(t, "single_word", p, false));
    // tokenizers defaults `normalized` to the opposite of `special`.
    FG_ASSIGN_OR_RETURN(token.normalized, GetBool(t, "normalized", p, !token.special));
    out.push_back(std::move(token));
  }
  return out;
}

Expected<std::unique_ptr<Tokenizer>> BuildFromJson(const json& root, const std::string& source) {
  if (!root.is_object()) return InvalidArgument("expected a JSON object at the top level");
  TokenizerParts parts;
  parts.source = source;
  auto model_it = root.find("model");
  if (model_it == root.end()) return FieldError("model", "missing");
  FG_ASSIGN_OR_RETURN(parts.model, ParseModel(*model_it));
  auto present = [&](const char* key) { return root.contains(key) && !root[key].is_null(); };
  if (present("normalizer")) {
    FG_ASSIGN_OR_RETURN(parts.normalizer, ParseNormalizer(root["normalizer"], "normalizer"));
  }
  if (present("pre_tokenizer")) {
    FG_ASSIGN_OR_RETURN(parts.pre_tokenizer, ParsePreTokenizer(root["pre_tokenizer"], "pre_tokenizer"));
  }
  if (present("post_processor")) {
    FG_ASSIGN_OR_RETURN(parts.post_processor, ParsePostProcessor(root["post_processor"], "post_processor"));
  }
  if (present("decoder")) {
    FG_ASSIGN_OR_RETURN(parts.decoder, ParseDecoder(root["decoder"], "decoder"));
  }
  FG_ASSIGN_OR_RETURN(parts.added_tokens, ParseAddedTokens(root));
  return Tokenizer::FromParts(std::move(parts));
}

}  // namespace

Expected<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json_text, const std::string& source_name) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const std::exception& e) {
    return InvalidArgument(source_name + ": not valid JSON: " + e.what());
  }
  // Every access above checks types first; this guard only keeps an unexpected nlohmann
  // exception from escaping the library.
  try {
    auto result = BuildFromJson(root, source_name);
    if (!result.ok()) return result.status().WithContext(source_name);
    return result;
  } catch (const std::exception& e) {
    return InvalidArgument(source_name + ": " + e.what());
  }
}

}  // namespace fastgen
