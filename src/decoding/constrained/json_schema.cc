// The converter walks the schema once, writing a rule per subschema that needs one (named after
// its property, item or definition) and reusing shared rules for the primitives. Every value's
// rule ends with the whitespace that may follow it, so composite rules only add whitespace after
// their own punctuation.
#include "decoding/constrained/json_schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "decoding/constrained/json_schema_merge.h"

namespace fastgen::constrained {
namespace {

using json_schema::Annotations;
using json_schema::InlineSchema;
using json_schema::kMaxDepth;
using json_schema::MergeAllOf;
using json_schema::MergeSchemaInto;
using json_schema::ojson;
using json_schema::PointerJoin;
using json_schema::ResolveRef;
using json_schema::Where;

// Unbounded integers (integer parts, fractions) have at most this many digits, as in llama.cpp: a
// model that never stops writing digits is stopped by the grammar. Exponents have at most two, so
// every number is a finite double (1e999 is valid JSON that many parsers refuse).
constexpr int kMaxIntegerDigits = 16;
constexpr int64_t kMaxBound = 999'999'999'999'999'999;  // integer bounds are clamped to ±this

// Keywords implemented, by the type they constrain (used to infer a missing `type`).
const std::map<std::string, std::string>& TypedKeywords() {
  static const std::map<std::string, std::string> k = {{"minLength", "string"},
                                                       {"maxLength", "string"},
                                                       {"pattern", "string"},
                                                       {"format", "string"},
                                                       {"minimum", "number"},
                                                       {"maximum", "number"},
                                                       {"exclusiveMinimum", "number"},
                                                       {"exclusiveMaximum", "number"},
                                                       {"properties", "object"},
                                                       {"required", "object"},
                                                       {"additionalProperties", "object"},
                                                       {"minProperties", "object"},
                                                       {"maxProperties", "object"},
                                                       {"items", "array"},
                                                       {"prefixItems", "array"},
                                                       {"additionalItems", "array"},
                                                       {"minItems", "array"},
                                                       {"maxItems", "array"},
                                                       {"uniqueItems", "array"}};
  return k;
}

bool IsGeneralKeyword(const std::string& k) {
  return k == "type" || k == "enum" || k == "const" || k == "$ref" || k == "anyOf" || k == "oneOf" || k == "allOf";
}

// The compact JSON text of a value; nlohmann throws on strings that are not UTF-8.
Expected<std::string> Dump(const ojson& v, const std::string& path) {
  try {
    return v.dump();
  } catch (const std::exception& e) {
    return InvalidArgument(Where(path) + "cannot write a value as JSON: " + e.what());
  }
}

bool IsOfType(const ojson& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "integer") {
    return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  }
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "object") return v.is_object();
  return v.is_array();
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? std::string(sep) : "") + parts[i];
  return out;
}

// The largest value an unbounded side reaches: kMaxIntegerDigits digits, or as many as the other
// bound has.
uint64_t OpenEnd(uint64_t other) {
  const size_t digits = std::max<size_t>(kMaxIntegerDigits, std::to_string(other).size());
  uint64_t v = 1;
  for (size_t i = 0; i < digits; ++i) v *= 10;
  return v - 1;
}

struct Bound {
  std::optional<double> value;
  bool exclusive = false;
};
struct Bounds {
  Bound lower, upper;
};

class Converter {
 public:
  Converter(const ojson& doc, const JsonSchemaOptions& opts) : doc_(doc), opts_(opts) {}

  Expected<std::string> Run() {
    FG_ASSIGN_OR_RETURN(std::string body, Visit(doc_, "", "root", 0));
    FG_ASSIGN_OR_RETURN(std::string text, builder_.Build(body));
    if (text.size() > opts_.max_grammar_bytes) return TooLarge();
    return text;
  }

  // Shared primitives.
  std::string Space() {
    return opts_.compact ? "" : " " + Shared("space", [] { return std::string("[ \\t\\n]{0,20}"); });
  }
  std::string Escape() {
    return Shared("escape", [] { return std::string(R"("\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}))"); });
  }
  std::string Char() {
    return Shared("char", [this] { return std::string(R"([^"\\\x00-\x1F] | )") + Escape(); });
  }
  // The rest of a string after its first character, closing quote and whitespace included.
  std::string StringTail() {
    return Shared("string-tail", [this] { return Char() + "* \"\\\"\"" + Space(); });
  }
  std::string String() {
    return Shared("string", [this] { return "\"\\\"\" " + Char() + "* \"\\\"\"" + Space(); });
  }
  std::string Number() {
    return Shared("number", [this] {
      return "\"-\"? (\"0\" | [1-9] [0-9]{0," + std::to_string(kMaxIntegerDigits - 1) + "}) (\".\" [0-9]{1," +
             std::to_string(kMaxIntegerDigits) + "})? ([eE] [-+]? [0-9]{1,2})?" + Space();
    });
  }
  std::string Integer() {
    return Shared("integer", [this] {
      return "\"-\"? (\"0\" | [1-9] [0-9]{0," + std::to_string(kMaxIntegerDigits - 1) + "})" + Space();
    });
  }
  std::string Boolean() {
    return Shared("boolean", [this] { return "(\"true\" | \"false\")" + Space(); });
  }
  std::string Null() {
    return Shared("null", [this] { return "\"null\"" + Space(); });
  }
  std::string Value() {
    return Shared("value", [this] {
      return Object() + " | " + Array() + " | " + String() + " | " + Number() + " | " + Boolean() + " | " + Null();
    });
  }
  std::string Object() {
    return Shared("object", [this] {
      const std::string kv = String() + " \":\"" + Space() + " " + Value();
      return "\"{\"" + Space() + " (" + kv + " (\",\"" + Space() + " " + kv + ")*)? \"}\"" + Space();
    });
  }
  std::string Array() {
    return Shared("array", [this] {
      return "\"[\"" + Space() + " (" + Value() + " (\",\"" + Space() + " " + Value() + ")*)? \"]\"" + Space();
    });
  }
  GbnfBuilder& builder() { return builder_; }

 private:
  std::string Shared(const std::string& key, const std::function<std::string()>& make) {
    return builder_.Shared(key, make);
  }
  Status TooLarge() const {
    return Unsupported("json schema: the grammar would be over " + std::to_string(opts_.max_grammar_bytes) + " bytes");
  }
  static std::string Child(const std::string& hint, std::string_view name) {
    return hint == "root" ? std::string(name) : hint + "-" + std::string(name);
  }

  Expected<std::string> Visit(const ojson& s, const std::string& path, const std::string& hint, int depth);
  // Visit, as one atom: the body itself when it is one, else a rule named from `hint`.
  Expected<std::string> VisitAtom(const ojson& s, const std::string& path, const std::string& hint, int depth) {
    FG_ASSIGN_OR_RETURN(std::string body, Visit(s, path, hint, depth));
    if (GbnfBuilder::IsAtom(body)) return body;
    return builder_.Add(hint, std::move(body));
  }
  Expected<std::string> TypeBody(const ojson& s, const std::string& type, const std::string& path,
                                 const std::string& hint, int depth);
  Expected<std::string> StringBody(const ojson& s, const std::string& path, const std::string& hint);
  Expected<std::string> NumberBody(const ojson& s, const std::string& path, bool integer);
  Expected<std::string> ObjectBody(const ojson& s, const std::string& path, const std::string& hint, int depth);
  Expected<std::string> ArrayBody(const ojson& s, const std::string& path, const std::string& hint, int depth);
  Expected<std::string> EnumBody(const ojson& s, const std::string& path);
  Expected<std::string> RefRule(const std::string& ref, const std::string& path, int depth);
  Expected<std::string> KeyOtherThan(const std::vector<std::string>& names, const std::string& hint);

  Expected<int64_t> Count(const ojson& s, const char* key, const std::string& path, int64_t fallback) const;
  Expected<Bounds> ReadBounds(const ojson& s, const std::string& path) const;
  Expected<std::vector<std::string>> Types(const ojson& s, const std::string& path) const;

  const ojson& doc_;
  JsonSchemaOptions opts_;
  GbnfBuilder builder_;
  std::map<std::string, std::string> ref_rules_;  // JSON pointer -> rule name
};

// ---- reading keywords ----

Expected<int64_t> Converter::Count(const ojson& s, const char* key, const std::string& path, int64_t fallback) const {
  auto it = s.find(key);
  if (it == s.end()) return fallback;
  const bool integral =
      it->is_number_integer() || (it->is_number_float() && std::floor(it->get<double>()) == it->get<double>());
  if (!integral || it->get<double>() < 0) return InvalidArgument(Where(path) + key + " must be a non-negative integer");
  const double v = it->get<double>();
  if (v > static_cast<double>(opts_.max_repetition)) {
    return Unsupported(Where(path) + key + " " + it->dump() + " is above the limit of " +
                       std::to_string(opts_.max_repetition) + " (each one is a copy in the grammar)");
  }
  return static_cast<int64_t>(v);
}

Expected<Bounds> Converter::ReadBounds(const ojson& s, const std::string& path) const {
  Bounds b;
  // minimum / exclusiveMinimum (a number, or draft 4's boolean modifier of minimum).
  auto read = [&](const char* inclusive, const char* exclusive, bool lower, Bound* out) -> Status {
    if (auto it = s.find(inclusive); it != s.end()) {
      if (!it->is_number()) return InvalidArgument(Where(path) + inclusive + " must be a number");
      out->value = it->get<double>();
    }
    if (auto it = s.find(exclusive); it != s.end()) {
      if (it->is_boolean()) {
        if (it->get<bool>() && !out->value) {
          return InvalidArgument(Where(path) + exclusive + " true needs " + inclusive);
        }
        out->exclusive = it->get<bool>();
      } else if (it->is_number()) {
        const double v = it->get<double>();
        if (!out->value || (lower ? v >= *out->value : v <= *out->value)) *out = {v, true};
      } else {
        return InvalidArgument(Where(path) + exclusive + " must be a number");
      }
    }
    return Status::Ok();
  };
  FG_RETURN_IF_ERROR(read("minimum", "exclusiveMinimum", true, &b.lower));
  FG_RETURN_IF_ERROR(read("maximum", "exclusiveMaximum", false, &b.upper));
  return b;
}

Expected<std::vector<std::string>> Converter::Types(const ojson& s, const std::string& path) const {
  static const std::set<std::string> kNames = {"string", "number", "integer", "boolean", "null", "object", "array"};
  std::vector<std::string> types;
  auto add = [&](const std::string& t) {
    if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
  };
  auto it = s.find("type");
  if (it == s.end()) {  // inferred from the keywords present
    for (const auto& [key, v] : s.items()) {
      if (auto k = TypedKeywords().find(key); k != TypedKeywords().end()) add(k->second);
    }
    return types;
  }
  const ojson list = it->is_array() ? *it : ojson::array({*it});
  if (list.empty()) return InvalidArgument(Where(path) + "type must not be an empty list");
  for (const ojson& t : list) {
    if (!t.is_string() || !kNames.count(t.get<std::string>())) {
      return InvalidArgument(Where(path) + "unknown type " + t.dump());
    }
    add(t.get<std::string>());
  }
  return types;
}

Expected<std::string> Converter::RefRule(const std::string& ref, const std::string& path, int depth) {
  if (ref == "#") return std::string("root");
  FG_ASSIGN_OR_RETURN(const ojson* target, ResolveRef(doc_, ref, path));
  const std::string pointer = ref.substr(1);
  if (auto it = ref_rules_.find(pointer); it != ref_rules_.end()) return it->second;
  // One rule per target, reserved before its body is written, so a recursive reference finds it.
  std::string hint = pointer.substr(pointer.rfind('/') + 1);
  const std::string name = builder_.Reserve(hint.empty() ? "ref" : hint);
  ref_rules_.emplace(pointer, name);
  FG_ASSIGN_OR_RETURN(std::string body, Visit(*target, pointer, name, depth + 1));
  builder_.Define(name, std::move(body));
  return name;
}

// ---- visiting ----

Expected<std::string> Converter::Visit(const ojson& s, const std::string& path, const std::string& hint, int depth) {
  if (depth > kMaxDepth) {
    return InvalidArgument(Where(path) + "schemas nested more than " + std::to_string(kMaxDepth) + " deep");
  }
  if (builder_.bytes() > opts_.max_grammar_bytes) return TooLarge();
  if (s.is_boolean()) {
    if (s.get<bool>()) return Value();
    return InvalidArgument(Where(path) + "the schema false allows no value");
  }
  if (!s.is_object()) return InvalidArgument(Where(path) + "a schema must be an object or a boolean");
  size_t constraints = 0;
  for (const auto& [key, v] : s.items()) {
    if (Annotations().count(key)) continue;
    if (!IsGeneralKeyword(key) && !TypedKeywords().count(key)) {
      return Unsupported(Where(path) + "the keyword '" + key + "' is not supported");
    }
    ++constraints;
  }
  if (s.contains("$ref")) {
    if (!s["$ref"].is_string()) return InvalidArgument(Where(path) + "$ref must be a string");
    if (constraints == 1) return RefRule(s["$ref"].get<std::string>(), path, depth);
    // $ref next to other keywords: both apply (JSON Schema 2019-09 on), so they are merged.
    FG_ASSIGN_OR_RETURN(ojson merged, InlineSchema(doc_, s, path, depth));
    return Visit(merged, path, hint, depth + 1);
  }
  if (s.contains("allOf")) {
    FG_ASSIGN_OR_RETURN(ojson merged, MergeAllOf(doc_, s, path, depth));
    return Visit(merged, path, hint, depth + 1);
  }
  if (s.contains("anyOf") && s.contains("oneOf")) {
    return Unsupported(Where(path) + "anyOf and oneOf together are not supported");
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!s.contains(key)) continue;
    const ojson& branches = s[key];
    if (!branches.is_array() || branches.empty()) {
      return InvalidArgument(Where(path) + key + " must be a non-empty array");
    }
    ojson siblings = ojson::object();  // keywords next to anyOf apply to every branch
    for (const auto& [k, v] : s.items()) {
      if (k != key && !Annotations().count(k)) siblings[k] = v;
    }
    std::vector<std::string> alts;
    for (size_t i = 0; i < branches.size(); ++i) {
      const std::string where = PointerJoin(PointerJoin(path, key), std::to_string(i));
      ojson branch = branches[i];
      if (!siblings.empty()) {
        FG_ASSIGN_OR_RETURN(ojson inlined, InlineSchema(doc_, branch, where, depth + 1));
        branch = siblings;
        FG_RETURN_IF_ERROR(MergeSchemaInto(&branch, inlined, where));
      }
      FG_ASSIGN_OR_RETURN(std::string alt, Visit(branch, where, hint + "-" + std::to_string(i), depth + 1));
      alts.push_back(std::move(alt));
    }
    return Join(alts, " | ");
  }
  if (s.contains("const") || s.contains("enum")) return EnumBody(s, path);
  FG_ASSIGN_OR_RETURN(std::vector<std::string> types, Types(s, path));
  if (types.empty()) return Value();
  std::vector<std::string> alts;
  for (const std::string& type : types) {
    FG_ASSIGN_OR_RETURN(std::string alt, TypeBody(s, type, path, hint, depth));
    alts.push_back(std::move(alt));
  }
  return Join(alts, " | ");
}

Expected<std::string> Converter::TypeBody(const ojson& s, const std::string& type, const std::string& path,
                                          const std::string& hint, int depth) {
  if (type == "string") return StringBody(s, path, hint);
  if (type == "integer" || type == "number") return NumberBody(s, path, type == "integer");
  if (type == "boolean") return Boolean();
  if (type == "null") return Null();
  if (type == "object") return ObjectBody(s, path, hint, depth);
  return ArrayBody(s, path, hint, depth);
}

Expected<std::string> Converter::EnumBody(const ojson& s, const std::string& path) {
  ojson values = ojson::array();
  if (s.contains("const")) {
    values.push_back(s["const"]);
    if (s.contains("enum") &&
        (!s["enum"].is_array() || std::find(s["enum"].begin(), s["enum"].end(), s["const"]) == s["enum"].end())) {
      return InvalidArgument(Where(path) + "const is not one of enum");
    }
  } else {
    values = s["enum"];
    if (!values.is_array() || values.empty()) return InvalidArgument(Where(path) + "enum must be a non-empty array");
  }
  std::vector<std::string> types;
  if (s.contains("type")) {
    FG_ASSIGN_OR_RETURN(types, Types(s, path));
  }
  std::vector<std::string> alts;
  for (const ojson& v : values) {
    const bool typed =
        types.empty() || std::any_of(types.begin(), types.end(), [&](const std::string& t) { return IsOfType(v, t); });
    if (!typed) continue;
    FG_ASSIGN_OR_RETURN(std::string text, Dump(v, path));
    const std::string lit = GbnfBuilder::Literal(text);
    if (std::find(alts.begin(), alts.end(), lit) == alts.end()) alts.push_back(lit);
  }
  if (alts.empty()) return InvalidArgument(Where(path) + "no value of enum / const has the schema's type");
  return (alts.size() == 1 ? alts[0] : "(" + Join(alts, " | ") + ")") + Space();
}

Expected<std::string> Converter::StringBody(const ojson& s, const std::string& path, const std::string& hint) {
  FG_ASSIGN_OR_RETURN(int64_t min, Count(s, "minLength", path, 0));
  FG_ASSIGN_OR_RETURN(int64_t max, Count(s, "maxLength", path, -1));
  if (max >= 0 && max < min) return InvalidArgument(Where(path) + "maxLength is below minLength");
  const bool lengths = s.contains("minLength") || s.contains("maxLength");
  const std::string quote = "\"\\\"\"";
  if (auto it = s.find("pattern"); it != s.end()) {
    if (!it->is_string()) return InvalidArgument(Where(path) + "pattern must be a string");
    if (lengths) return Unsupported(Where(path) + "pattern together with minLength / maxLength is not supported");
    RegexGbnfOptions ro;
    ro.anchoring = opts_.pattern_anchoring;
    ro.output = RegexOutput::kJsonStringContent;
    ro.max_repetition = opts_.max_repetition;
    auto rule = AddRegexRules(it->get<std::string>(), ro, Child(hint, "pattern"), &builder_);
    if (!rule.ok()) return Status(rule.status().code(), Where(PointerJoin(path, "pattern")) + rule.status().message());
    return quote + " " + *rule + " " + quote + Space();
  }
  if (auto it = s.find("format"); it != s.end()) {
    if (!it->is_string()) return InvalidArgument(Where(path) + "format must be a string");
    const std::string format = it->get<std::string>();
    static const std::map<std::string, std::string> kFormats = {
        {"date", R"([0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01]))"},
        {"time",
         R"(([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" ([0-5] [0-9] | "60") ("." [0-9]{1,9})? ("Z" | [+\-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9]))"},
        {"uuid", R"([0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12})"},
        {"email",
         R"([A-Za-z0-9!#$%&'*+/=?\^_`{|}~\-]+ ("." [A-Za-z0-9!#$%&'*+/=?\^_`{|}~\-]+)* "@" [A-Za-z0-9] ([A-Za-z0-9\-]* [A-Za-z0-9])? ("." [A-Za-z0-9] ([A-Za-z0-9\-]* [A-Za-z0-9])?)+)"},
        {"ipv4", R"(ipv4-octet "." ipv4-octet "." ipv4-octet "." ipv4-octet)"},
    };
    std::string rule;
    if (format == "date-time") {
      const std::string date = Shared("date", [] { return kFormats.at("date"); });
      const std::string time = Shared("time", [] { return kFormats.at("time"); });
      rule = Shared("date-time", [&] { return date + " \"T\" " + time; });
    } else if (kFormats.count(format)) {
      if (format == "ipv4") {
        Shared("ipv4-octet",
               [] { return std::string(R"("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9])"); });
      }
      rule = Shared(format, [&] { return kFormats.at(format); });
    }
    if (!rule.empty()) {  // other formats are annotations
      if (lengths) return Unsupported(Where(path) + "format together with minLength / maxLength is not supported");
      return quote + " " + rule + " " + quote + Space();
    }
  }
  if (!lengths) return String();
  return quote + " " + GbnfBuilder::Repeat(Char(), min, max) + " " + quote + Space();
}

Expected<std::string> Converter::NumberBody(const ojson& s, const std::string& path, bool integer) {
  FG_ASSIGN_OR_RETURN(Bounds b, ReadBounds(s, path));
  if (!b.lower.value && !b.upper.value) return integer ? Integer() : Number();
  // Integer bounds, rounded inward; a bound beyond ±kMaxBound on the open side is no bound.
  std::optional<int64_t> lo, hi;
  bool lo_excl = false, hi_excl = false, fractional = false;
  const double limit = static_cast<double>(kMaxBound);
  if (b.lower.value) {
    const double v = *b.lower.value;
    if (v > limit) return Unsupported(Where(path) + "a lower bound above 10^18 is not supported");
    if (v >= -limit) {
      fractional |= std::floor(v) != v;
      lo = static_cast<int64_t>(std::ceil(v));
      lo_excl = b.lower.exclusive && std::floor(v) == v;
      if (integer && lo_excl) {
        ++*lo;
        lo_excl = false;
      }
    }
  }
  if (b.upper.value) {
    const double v = *b.upper.value;
    if (v < -limit) return Unsupported(Where(path) + "an upper bound below -10^18 is not supported");
    if (v <= limit) {
      fractional |= std::floor(v) != v;
      hi = static_cast<int64_t>(std::floor(v));
      hi_excl = b.upper.exclusive && std::floor(v) == v;
      if (integer && hi_excl) {
        --*hi;
        hi_excl = false;
      }
    }
  }
  auto magnitude = [](std::optional<int64_t> v) { return v ? static_cast<uint64_t>(*v < 0 ? -*v : *v) : 0; };
  if (integer) {
    const int64_t l = lo ? *lo : -static_cast<int64_t>(OpenEnd(magnitude(hi)));
    const int64_t h = hi ? *hi : static_cast<int64_t>(OpenEnd(magnitude(lo)));
    if (l > h) return InvalidArgument(Where(path) + "no integer is within minimum / maximum");
    return GbnfBuilder::Group(IntegerRangeGbnf(l, h)) + Space();
  }
  // Written without a sign, x >= 0; with one, x <= 0 as the magnitude -x. An open end is capped
  // like an unbounded number's integer part.
  std::vector<std::string> alts;
  if (!hi || *hi > 0 || (*hi == 0 && !hi_excl)) {
    DecimalRange r;
    if (lo && *lo >= 0) {
      r.lo = static_cast<uint64_t>(*lo);
      r.lo_exclusive = lo_excl;
    }
    r.hi = hi ? static_cast<uint64_t>(*hi) : OpenEnd(r.lo);
    r.hi_exclusive = hi && hi_excl;
    r.max_fraction_digits = kMaxIntegerDigits;
    if (std::string m = DecimalRangeGbnf(r); !m.empty()) alts.push_back(m);
  }
  if (!lo || *lo < 0) {
    DecimalRange r;
    if (hi && *hi <= 0) {
      r.lo = static_cast<uint64_t>(-*hi);
      r.lo_exclusive = hi_excl;
    }
    r.hi = lo ? static_cast<uint64_t>(-*lo) : OpenEnd(r.lo);
    r.hi_exclusive = lo && lo_excl;
    r.max_fraction_digits = kMaxIntegerDigits;
    if (std::string m = DecimalRangeGbnf(r); !m.empty()) alts.push_back("\"-\" " + GbnfBuilder::Group(m));
  }
  if (alts.empty()) {
    if (fractional) {
      return Unsupported(Where(path) + "no integer-bounded range fits inside these fractional bounds (not supported)");
    }
    return InvalidArgument(Where(path) + "no number is within minimum / maximum");
  }
  return GbnfBuilder::Group(Join(alts, " | ")) + Space();
}

Expected<std::string> Converter::ObjectBody(const ojson& s, const std::string& path, const std::string& hint,
                                            int depth) {
  static const ojson kAny = true;
  const std::string sp = Space(), open = "\"{\"" + sp, close = "\"}\"" + sp;
  const std::string comma = "\",\"" + sp + " ", colon = "\":\"" + sp + " ";
  ojson props = ojson::object();
  if (auto it = s.find("properties"); it != s.end()) {
    if (!it->is_object()) return InvalidArgument(Where(path) + "properties must be an object");
    props = *it;
  }
  std::vector<std::string> required;
  if (auto it = s.find("required"); it != s.end()) {
    if (!it->is_array()) return InvalidArgument(Where(path) + "required must be an array of strings");
    for (const ojson& r : *it) {
      if (!r.is_string()) return InvalidArgument(Where(path) + "required must be an array of strings");
      if (std::find(required.begin(), required.end(), r.get<std::string>()) == required.end()) required.push_back(r);
    }
  }
  const ojson additional =
      s.contains("additionalProperties") ? s["additionalProperties"] : ojson(!opts_.closed_objects);
  if (!additional.is_boolean() && !additional.is_object()) {
    return InvalidArgument(Where(path) + "additionalProperties must be a boolean or a schema");
  }
  const bool extras = additional != false;
  FG_ASSIGN_OR_RETURN(int64_t min_props, Count(s, "minProperties", path, 0));
  FG_ASSIGN_OR_RETURN(int64_t max_props, Count(s, "maxProperties", path, -1));
  if (max_props >= 0 && max_props < min_props) {
    return InvalidArgument(Where(path) + "maxProperties is below minProperties");
  }
  std::string extra_value;
  if (extras) {
    FG_ASSIGN_OR_RETURN(extra_value, VisitAtom(additional, PointerJoin(path, "additionalProperties"),
                                               Child(hint, "additional"), depth + 1));
  }

  if (props.empty() && required.empty()) {  // a map: any keys (or none), counted
    if (!extras || max_props == 0) {
      if (min_props > 0) return InvalidArgument(Where(path) + "minProperties cannot be met: no property is allowed");
      return open + " " + close;
    }
    if (additional == true && min_props == 0 && max_props < 0) return Object();
    const std::string kv = builder_.Add(Child(hint, "kv"), String() + " " + colon + extra_value);
    std::string items = kv;
    if (max_props != 1) {
      items += " " +
               GbnfBuilder::Repeat(comma + kv, std::max<int64_t>(min_props - 1, 0), max_props < 0 ? -1 : max_props - 1);
    }
    return open + " " + (min_props == 0 ? "(" + items + ")?" : items) + " " + close;
  }

  struct Prop {
    std::string name;
    const ojson* schema;
    std::string where;
    bool required;
  };
  std::vector<Prop> list;
  for (const auto& [name, sub] : props.items()) {
    const bool req = std::find(required.begin(), required.end(), name) != required.end();
    list.push_back({name, &sub, PointerJoin(PointerJoin(path, "properties"), name), req});
  }
  for (const std::string& name : required) {  // required but not described: any allowed value
    if (props.contains(name)) continue;
    if (!extras) {
      return InvalidArgument(Where(path) + "required property '" + name +
                             "' is not in properties and additionalProperties is false");
    }
    list.push_back({name, additional.is_object() ? &additional : &kAny, PointerJoin(path, "required"), true});
  }
  const int64_t n_required = static_cast<int64_t>(required.size()), n_total = static_cast<int64_t>(list.size());
  if (min_props > n_required || (max_props >= 0 && (extras || max_props < n_total))) {
    return Unsupported(Where(path) +
                       "minProperties / maxProperties next to properties are only supported when they are met anyway");
  }
  std::vector<std::string> kv_required, kv_optional, names;
  for (const Prop& p : list) {
    const std::string prop_hint = Child(hint, p.name);
    FG_ASSIGN_OR_RETURN(std::string value, VisitAtom(*p.schema, p.where, prop_hint, depth + 1));
    FG_ASSIGN_OR_RETURN(std::string key, Dump(ojson(p.name), p.where));
    const std::string kv = builder_.Add(prop_hint + "-kv", GbnfBuilder::Literal(key) + sp + " " + colon + value);
    (p.required ? kv_required : kv_optional).push_back(kv);
    names.push_back(p.name);
  }
  std::string extra_kv;
  if (extras) {
    FG_ASSIGN_OR_RETURN(std::string key, KeyOtherThan(names, Child(hint, "additional-key")));
    extra_kv = builder_.Add(Child(hint, "additional-kv"), key + " " + colon + extra_value);
  }
  // rest[j]: what may follow the required properties or optional property j-1: each later
  // optional property at most once, in order, then any number of other keys.
  const size_t n = kv_optional.size();
  std::vector<std::string> rest(n + 1);
  if (extras) rest[n] = GbnfBuilder::Repeat(comma + extra_kv, 0, -1);
  for (size_t j = n; j-- > 0;) {
    std::string body = "(" + comma + kv_optional[j] + ")?" + (rest[j + 1].empty() ? "" : " " + rest[j + 1]);
    rest[j] = j == 0 ? body : builder_.Add(Child(hint, "rest"), body);
  }
  std::string body = open;
  for (size_t i = 0; i < kv_required.size(); ++i) body += " " + (i ? comma : "") + kv_required[i];
  if (!kv_required.empty()) {
    if (!rest[0].empty()) body += " " + rest[0];
  } else {  // the first key written has no comma before it
    std::vector<std::string> firsts;
    for (size_t i = 0; i < n; ++i) firsts.push_back(kv_optional[i] + (rest[i + 1].empty() ? "" : " " + rest[i + 1]));
    if (extras) firsts.push_back(extra_kv + " " + rest[n]);
    body += " (" + Join(firsts, " | ") + ")?";
  }
  return body + " " + close;
}

// A JSON string (with its quotes and the whitespace after it) that is none of `names`, so an
// object's other keys cannot repeat a declared one. Spelled as a trie: at each position either
// the next character of some name, or any other character and then anything, or the end when no
// name ends there.
Expected<std::string> Converter::KeyOtherThan(const std::vector<std::string>& names, const std::string& hint) {
  struct TrieNode {
    std::map<uint32_t, size_t> next;
    bool end = false;
  };
  std::vector<TrieNode> trie(1);
  for (const std::string& name : names) {
    FG_ASSIGN_OR_RETURN(std::string json, Dump(ojson(name), ""));
    FG_ASSIGN_OR_RETURN(std::u32string cps, DecodeUtf8(json.substr(1, json.size() - 2)));
    size_t node = 0;
    for (char32_t cp : cps) {
      auto it = trie[node].next.find(cp);
      if (it == trie[node].next.end()) {
        it = trie[node].next.emplace(cp, trie.size()).first;
        trie.emplace_back();
      }
      node = it->second;
    }
    trie[node].end = true;
  }
  const std::string quote = "\"\\\"\"", tail = StringTail(), escape = Escape();
  // Iterative, deepest nodes first, so that a long name cannot exhaust the stack; every 32 levels
  // a node becomes a rule of its own to keep the nesting of parentheses shallow.
  std::vector<size_t> depth(trie.size(), 0), order;
  for (size_t i = 0; i < trie.size(); ++i) {
    for (const auto& [cp, child] : trie[i].next) depth[child] = depth[i] + 1;  // children come later
  }
  std::vector<std::string> text(trie.size());
  for (size_t i = trie.size(); i-- > 0;) {
    std::vector<std::string> alts;
    CodepointRanges taken = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
    for (const auto& [cp, child] : trie[i].next) {
      taken.emplace_back(cp, cp);
      std::string sub = depth[child] % 32 == 0 ? builder_.Add(hint, text[child]) : "(" + text[child] + ")";
      alts.push_back(GbnfBuilder::LiteralCodepoints(std::u32string(1, cp)) + " " + sub);
    }
    std::vector<std::string> other;
    if (const CodepointRanges free = ComplementRanges(taken); !free.empty()) other.push_back(GbnfBuilder::Class(free));
    if (!trie[i].next.count('\\')) other.push_back(escape);
    if (!other.empty()) alts.push_back("(" + Join(other, " | ") + ") " + tail);
    if (!trie[i].end) alts.push_back(quote + Space());
    text[i] = Join(alts, " | ");
  }
  return builder_.Add(hint, quote + " (" + text[0] + ")");
}

Expected<std::string> Converter::ArrayBody(const ojson& s, const std::string& path, const std::string& hint,
                                           int depth) {
  static const ojson kAny = true;
  const std::string sp = Space(), comma = "\",\"" + sp + " ";
  std::vector<std::pair<const ojson*, std::string>> prefix;  // (schema, pointer)
  const ojson* rest = &kAny;
  std::string rest_path = PointerJoin(path, "items");
  auto items = s.find("items");
  if (auto it = s.find("prefixItems"); it != s.end()) {
    if (!it->is_array()) return InvalidArgument(Where(path) + "prefixItems must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
      prefix.emplace_back(&(*it)[i], PointerJoin(PointerJoin(path, "prefixItems"), std::to_string(i)));
    }
    if (items != s.end()) {
      if (items->is_array()) return InvalidArgument(Where(path) + "items must be a schema next to prefixItems");
      rest = &*items;
    }
  } else if (items != s.end() && items->is_array()) {  // draft 7's tuple form
    for (size_t i = 0; i < items->size(); ++i) {
      prefix.emplace_back(&(*items)[i], PointerJoin(rest_path, std::to_string(i)));
    }
    if (auto a = s.find("additionalItems"); a != s.end()) {
      rest = &*a;
      rest_path = PointerJoin(path, "additionalItems");
    }
  } else if (items != s.end()) {
    rest = &*items;
  }
  if (auto it = s.find("uniqueItems"); it != s.end()) {
    if (!it->is_boolean()) return InvalidArgument(Where(path) + "uniqueItems must be a boolean");
    if (it->get<bool>()) return Unsupported(Where(path) + "uniqueItems true is not supported");
  }
  const bool more_allowed = *rest != false;
  const int64_t k = static_cast<int64_t>(prefix.size());
  FG_ASSIGN_OR_RETURN(int64_t min, Count(s, "minItems", path, 0));
  FG_ASSIGN_OR_RETURN(int64_t max, Count(s, "maxItems", path, -1));
  if (!more_allowed) max = max < 0 ? k : std::min(max, k);
  if (max >= 0 && max < min) {
    return InvalidArgument(Where(path) + "minItems is above maxItems (or above the items allowed)");
  }
  if (k == 0 && *rest == true && min == 0 && max < 0) return Array();

  std::vector<std::string> atoms;
  for (int64_t i = 0; i < k && (max < 0 || i < max); ++i) {
    FG_ASSIGN_OR_RETURN(std::string a, VisitAtom(*prefix[i].first, prefix[i].second,
                                                 Child(hint, "item" + std::to_string(i)), depth + 1));
    atoms.push_back(std::move(a));
  }
  // The items after the prefix: lo..hi of them.
  std::string seq;
  if (more_allowed && (max < 0 || max > k)) {
    FG_ASSIGN_OR_RETURN(std::string item, VisitAtom(*rest, rest_path, Child(hint, "item"), depth + 1));
    const int64_t lo = std::max<int64_t>(0, min - k), hi = max < 0 ? -1 : max - k;
    if (k > 0) {
      seq = GbnfBuilder::Repeat(comma + item, lo, hi);
    } else {
      seq = item;
      if (hi != 1) seq += " " + GbnfBuilder::Repeat(comma + item, std::max<int64_t>(lo - 1, 0), hi < 0 ? -1 : hi - 1);
      if (lo == 0) seq = "(" + seq + ")?";
    }
  }
  // The prefix, from its end: item i is optional when i >= minItems.
  for (int64_t i = static_cast<int64_t>(atoms.size()) - 1; i >= 0; --i) {
    const std::string inner = (i ? comma : "") + atoms[i] + (seq.empty() ? "" : " " + seq);
    seq = i < min ? inner : "(" + inner + ")?";
  }
  return "\"[\"" + sp + " " + seq + " \"]\"" + sp;
}

}  // namespace

Expected<std::string> JsonSchemaToGbnf(const nlohmann::ordered_json& schema, const JsonSchemaOptions& opts) {
  Converter converter(schema, opts);
  return converter.Run();
}

Expected<std::string> JsonSchemaToGbnf(const nlohmann::json& schema, const JsonSchemaOptions& opts) {
  nlohmann::ordered_json ordered;
  try {
    ordered = nlohmann::ordered_json::parse(schema.dump());
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("json schema: ") + e.what());
  }
  return JsonSchemaToGbnf(ordered, opts);
}

Expected<std::string> JsonSchemaTextToGbnf(std::string_view schema_text, const JsonSchemaOptions& opts) {
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(schema_text);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("json schema: ") + e.what());
  }
  return JsonSchemaToGbnf(schema, opts);
}

std::string JsonValueGbnf(const JsonSchemaOptions& opts) {
  const nlohmann::ordered_json any = nlohmann::ordered_json::object();
  Converter converter(any, opts);
  const std::string value = converter.Value();
  return converter.builder().Build(value).value();
}

std::string JsonObjectGbnf(const JsonSchemaOptions& opts) {
  const nlohmann::ordered_json any = nlohmann::ordered_json::object();
  Converter converter(any, opts);
  const std::string object = converter.Object();
  return converter.builder().Build(object).value();
}

}  // namespace fastgen::constrained
