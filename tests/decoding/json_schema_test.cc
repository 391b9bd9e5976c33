// JSON Schema as GBNF: every test parses the converter's output with Grammar::Parse and checks
// which texts the matcher accepts (a whole text, then CanEnd). Besides hand-picked texts per
// feature: integer ranges checked value by value, and random walks through the grammar whose
// every finished text must be valid JSON that the schema allows.
#include "decoding/constrained/json_schema.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "decoding/constrained/grammar.h"
#include "decoding/constrained/matcher.h"

namespace fastgen::constrained {
namespace {

using json = nlohmann::ordered_json;

std::shared_ptr<const Grammar> Compile(std::string_view schema, const JsonSchemaOptions& opts = {}) {
  auto text = JsonSchemaTextToGbnf(schema, opts);
  EXPECT_TRUE(text.ok()) << schema << "\n-> " << text.status().message();
  if (!text.ok()) return nullptr;
  auto g = Grammar::Parse(*text);
  EXPECT_TRUE(g.ok()) << schema << "\n" << *text << "-> " << g.status().message();
  return g.ok() ? *g : nullptr;
}

bool Matches(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  if (!g) return false;
  GrammarMatcher m(g);
  return m.Accept(s) && m.CanEnd();
}

void ExpectLanguage(std::string_view schema, const std::vector<std::string>& yes, const std::vector<std::string>& no,
                    const JsonSchemaOptions& opts = {}) {
  auto g = Compile(schema, opts);
  ASSERT_NE(g, nullptr);
  for (const std::string& s : yes) {
    EXPECT_TRUE(Matches(g, s)) << schema << "\n  should accept: " << s;
    EXPECT_TRUE(json::accept(s)) << "test text is not JSON: " << s;
  }
  for (const std::string& s : no) EXPECT_FALSE(Matches(g, s)) << schema << "\n  should refuse: " << s;
}

Status ErrorOf(std::string_view schema, const JsonSchemaOptions& opts = {}) {
  auto text = JsonSchemaTextToGbnf(schema, opts);
  return text.ok() ? Status::Ok() : text.status();
}

void ExpectError(std::string_view schema, ErrorCode code, std::string_view message,
                 const JsonSchemaOptions& opts = {}) {
  const Status s = ErrorOf(schema, opts);
  EXPECT_EQ(s.code(), code) << schema << " -> " << s.message();
  EXPECT_NE(s.message().find(message), std::string::npos) << schema << " -> " << s.message();
}

// Walks the grammar byte by byte, each step a random allowed byte (structural ASCII preferred so
// that walks end), stopping where the text may end with probability 1/2. Unfinished walks are
// dropped.
std::vector<std::string> RandomTexts(const std::shared_ptr<const Grammar>& g, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int attempt = 0; attempt < count * 4 && static_cast<int>(out.size()) < count; ++attempt) {
    GrammarMatcher m(g);
    std::string text;
    bool done = false;
    for (int step = 0; step < 400 && !done; ++step) {
      if (m.CanEnd() && (m.Finished() || rng() % 2 == 0)) {
        done = true;
        break;
      }
      std::vector<uint8_t> allowed, structural;
      const MatchState saved = m.state();
      for (int b = 0; b < 256; ++b) {
        const char c = static_cast<char>(b);
        if (!m.Accept(std::string_view(&c, 1))) continue;
        m.set_state(saved);
        allowed.push_back(static_cast<uint8_t>(b));
        if (std::string_view("\"]},:0123456789eE.-tfn").find(c) != std::string_view::npos) structural.push_back(b);
      }
      if (allowed.empty()) break;
      const auto& pool = !structural.empty() && rng() % 3 != 0 ? structural : allowed;
      const char c = static_cast<char>(pool[rng() % pool.size()]);
      EXPECT_TRUE(m.Accept(std::string_view(&c, 1)));
      text += c;
    }
    if (done) out.push_back(text);
  }
  EXPECT_GE(out.size(), static_cast<size_t>(count / 2)) << "random walks rarely finish";
  return out;
}

// Random texts of the schema's grammar are JSON and satisfy `check`.
void ExpectSound(std::string_view schema, const std::function<bool(const json&)>& check, int count = 60) {
  auto g = Compile(schema);
  ASSERT_NE(g, nullptr);
  for (const std::string& text : RandomTexts(g, count, 7)) {
    const json v = json::parse(text, nullptr, false);
    ASSERT_FALSE(v.is_discarded()) << schema << "\n  produced invalid JSON: " << text;
    EXPECT_TRUE(check(v)) << schema << "\n  produced a value the schema refuses: " << text;
  }
}

TEST(JsonSchema, Primitives) {
  ExpectLanguage(R"({"type": "string"})",
                 {R"("")", R"("abc")", R"("a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00")", "\"é😀\""},
                 {R"(abc)", R"("abc)", "\"a\nb\"", R"("\x")", R"("\u12")", R"("a"b")", "\"\x01\""});
  ExpectLanguage(R"({"type": "number"})", {"0", "-0", "12", "-3.25", "1e10", "2.5E-3", "1e+07", "1234567890123456"},
                 {"01", "1.", ".5", "+1", "1e", "--1", "12345678901234567", "1e100", "NaN", "\"1\""});
  ExpectLanguage(R"({"type": "integer"})", {"0", "-7", "1234567890123456"},
                 {"1.0", "01", "1e3", "-", "12345678901234567"});
  ExpectLanguage(R"({"type": "boolean"})", {"true", "false"}, {"True", "1", "null"});
  ExpectLanguage(R"({"type": "null"})", {"null"}, {"nul", "None", ""});
  ExpectLanguage(R"({})", {"1", "\"x\"", "[1, {\"a\": null}]", "{}", "true"}, {"", "{", "[1,]"});
  ExpectLanguage(R"(true)", {"1", "{}"}, {"x"});
}

TEST(JsonSchema, WhitespaceIsOptionalAndBoundedOrAbsentWhenCompact) {
  const char* schema = R"({"type": "object", "properties": {"a": {"type": "array"}}, "required": ["a"]})";
  ExpectLanguage(schema, {R"({"a":[]})", "{ \"a\" : [ 1 , 2 ] }", "{\n  \"a\": [\n    1\n  ]\n}\n"},
                 {" {\"a\":[]}", "{" + std::string(21, ' ') + "\"a\":[]}"});
  JsonSchemaOptions compact;
  compact.compact = true;
  ExpectLanguage(schema, {R"({"a":[1,{"b":2}]})"}, {R"({ "a":[]})", R"({"a": []})", "{\"a\":[]}\n"}, compact);
}

TEST(JsonSchema, IntegerRangeZeroTo255IsExact) {
  auto g = Compile(R"({"type": "integer", "minimum": 0, "maximum": 255})");
  for (int v = -5; v <= 300; ++v) EXPECT_EQ(Matches(g, std::to_string(v)), v >= 0 && v <= 255) << v;
  for (const char* s : {"007", "00", "-0", "+5", "25 5", "1.0", "2550"}) EXPECT_FALSE(Matches(g, s)) << s;
}

TEST(JsonSchema, IntegerRangesValueByValue) {
  struct Case {
    const char* bounds;
    int64_t lo, hi;  // the expected closed range
  } cases[] = {
      {R"("minimum": -37, "maximum": 1234)", -37, 1234},
      {R"("minimum": 100, "maximum": 999)", 100, 999},
      {R"("minimum": -999, "maximum": -100)", -999, -100},
      {R"("minimum": 7)", 7, INT64_MAX},
      {R"("maximum": -3)", INT64_MIN, -3},
      {R"("exclusiveMinimum": 9, "exclusiveMaximum": 1000)", 10, 999},
      {R"("minimum": 5, "exclusiveMinimum": true, "maximum": 20, "exclusiveMaximum": true)", 6, 19},  // draft 4
      {R"("minimum": 2.5, "maximum": 17.9)", 3, 17},
      {R"("minimum": 1, "maximum": 1)", 1, 1},
      {R"("minimum": 0)", 0, INT64_MAX},
      {R"("minimum": 1, "maximum": 10, "exclusiveMinimum": 4)", 5, 10},
  };
  for (const Case& c : cases) {
    auto g = Compile(std::string(R"({"type": "integer", )") + c.bounds + "}");
    ASSERT_NE(g, nullptr) << c.bounds;
    for (int64_t v = -1300; v <= 1300; ++v) {
      ASSERT_EQ(Matches(g, std::to_string(v)), v >= c.lo && v <= c.hi) << c.bounds << ": " << v;
    }
    for (int64_t v : {int64_t{123456789012}, int64_t{-123456789012}, int64_t{9999999999999999}}) {
      EXPECT_EQ(Matches(g, std::to_string(v)), v >= c.lo && v <= c.hi) << c.bounds << ": " << v;
    }
  }
}

TEST(JsonSchema, RandomIntegerRangesAgreeWithComparison) {
  std::mt19937_64 rng(1);
  auto random_value = [&]() {
    const int digits = 1 + static_cast<int>(rng() % 12);
    int64_t v = static_cast<int64_t>(rng() % static_cast<uint64_t>(std::pow(10.0, digits)));
    return rng() % 3 == 0 ? -v : v;
  };
  for (int round = 0; round < 60; ++round) {
    int64_t lo = random_value(), hi = random_value();
    if (lo > hi) std::swap(lo, hi);
    auto g = Compile(R"({"type": "integer", "minimum": )" + std::to_string(lo) + R"(, "maximum": )" +
                     std::to_string(hi) + "}");
    ASSERT_NE(g, nullptr);
    std::vector<int64_t> probes = {lo, hi, lo - 1, hi + 1, lo + 1, hi - 1, 0, -1, 1};
    for (int i = 0; i < 60; ++i) probes.push_back(random_value());
    for (int i = 0; i < 60; ++i) {
      probes.push_back(lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1)));
    }
    for (int64_t v : probes) {
      ASSERT_EQ(Matches(g, std::to_string(v)), v >= lo && v <= hi) << "[" << lo << ", " << hi << "]: " << v;
    }
  }
}

// Numbers with integer bounds are exact (without an exponent); fractional bounds round inward.
TEST(JsonSchema, NumberBounds) {
  std::vector<std::string> texts;
  for (const char* s :
       {"0",   "-0",   "0.0",   "-0.0", "0.5",  "-0.5", "1", "1.0",  "1.00", "1.5", "-1",  "-1.0",  "-1.5", "2",
        "2.0", "2.01", "2.000", "-2",   "-2.0", "-2.5", "3", "3.25", "-3",   "10",  "-10", "0.001", "1.999"}) {
    texts.push_back(s);
  }
  struct Case {
    const char* bounds;
    double lo, hi;
    bool lo_excl, hi_excl;
  } cases[] = {
      {R"("minimum": 0, "maximum": 2)", 0, 2, false, false},
      {R"("exclusiveMinimum": 0, "exclusiveMaximum": 2)", 0, 2, true, true},
      {R"("minimum": -2, "maximum": 1)", -2, 1, false, false},
      {R"("exclusiveMinimum": -2, "maximum": -1)", -2, -1, true, false},
      {R"("minimum": -1, "exclusiveMaximum": 0)", -1, 0, false, true},
      {R"("minimum": 1)", 1, INFINITY, false, false},
      {R"("exclusiveMaximum": -1)", -INFINITY, -1, false, true},
      {R"("minimum": 2, "maximum": 2)", 2, 2, false, false},
  };
  for (const Case& c : cases) {
    auto g = Compile(std::string(R"({"type": "number", )") + c.bounds + "}");
    ASSERT_NE(g, nullptr);
    for (const std::string& t : texts) {
      const double v = std::strtod(t.c_str(), nullptr);
      const bool in = (c.lo_excl ? v > c.lo : v >= c.lo) && (c.hi_excl ? v < c.hi : v <= c.hi);
      if (t[0] == '-' && v == 0) {  // "-0" is written only where negative numbers are allowed
        if (Matches(g, t)) {
          EXPECT_TRUE(in) << c.bounds << ": " << t;
        }
        continue;
      }
      EXPECT_EQ(Matches(g, t), in) << c.bounds << ": " << t;
    }
    EXPECT_FALSE(Matches(g, "1e0")) << "a bounded number is written without an exponent";
  }
  // Fractional bounds round inward: every accepted number is in range.
  auto g = Compile(R"({"type": "number", "minimum": 0.5, "maximum": 2.5})");
  EXPECT_TRUE(Matches(g, "1"));
  EXPECT_TRUE(Matches(g, "2.0"));
  EXPECT_TRUE(Matches(g, "1.75"));
  EXPECT_FALSE(Matches(g, "0.7"));  // in range, but below the rounded bound
  EXPECT_FALSE(Matches(g, "0.4"));
  EXPECT_FALSE(Matches(g, "2.6"));
  ExpectError(R"({"type": "number", "minimum": 0.2, "maximum": 0.8})", ErrorCode::kUnsupported, "fractional bounds");
  ExpectError(R"({"type": "integer", "minimum": 5, "maximum": 4})", ErrorCode::kInvalidArgument, "no integer");
}

TEST(JsonSchema, StringLengthsCountCharacters) {
  ExpectLanguage(R"({"type": "string", "minLength": 2, "maxLength": 4})",
                 {R"("ab")", R"("abcd")", "\"éü\"", R"("\n\"")", R"("a\u0041bc")"},
                 {R"("a")", R"("abcde")", R"("")", "\"é\""});
  ExpectLanguage(R"({"type": "string", "maxLength": 0})", {R"("")"}, {R"("a")"});
  ExpectLanguage(R"({"type": "string", "minLength": 3})", {R"("abc")", R"("abcdefghij")"}, {R"("ab")"});
}

TEST(JsonSchema, Formats) {
  ExpectLanguage(R"({"type": "string", "format": "date"})", {R"("2024-02-29")", R"("1999-12-31")"},
                 {R"("2024-13-01")", R"("2024-00-10")", R"("2024-01-32")", R"("24-01-01")", R"("2024-1-1")"});
  ExpectLanguage(R"({"format": "time"})", {R"("23:59:60Z")", R"("00:00:00.123+05:30")", R"("12:30:00-08:00")"},
                 {R"("24:00:00Z")", R"("12:60:00Z")", R"("12:00:00")", R"("12:00Z")"});
  ExpectLanguage(R"({"type": "string", "format": "date-time"})",
                 {R"("2024-05-01T13:45:00Z")", R"("2024-05-01T13:45:00.5+02:00")"},
                 {R"("2024-05-01 13:45:00Z")", R"("2024-05-01T13:45Z")", R"("2024-05-01")"});
  ExpectLanguage(R"({"type": "string", "format": "uuid"})",
                 {R"("123e4567-e89b-12d3-a456-426614174000")", R"("ABCDEF01-2345-6789-abcd-ef0123456789")"},
                 {R"("123e4567e89b12d3a456426614174000")", R"("123e4567-e89b-12d3-a456-42661417400g")"});
  ExpectLanguage(R"({"type": "string", "format": "email"})",
                 {R"("a@b.co")", R"("first.last+tag@mail.example.org")", R"("x_y@a-b.io")"},
                 {R"("a@b")", R"("@b.co")", R"("a@@b.co")", R"("a b@c.de")", R"("a@-b.co")", R"("a..b@c.de")"});
  ExpectLanguage(R"({"type": "string", "format": "ipv4"})",
                 {R"("0.0.0.0")", R"("255.255.255.255")", R"("192.168.1.20")"},
                 {R"("256.1.1.1")", R"("1.2.3")", R"("01.2.3.4")", R"("1.2.3.4.5")"});
  // Formats fastgen has no grammar for are annotations, as in JSON Schema 2019-09 and later.
  ExpectLanguage(R"({"type": "string", "format": "uri"})", {R"("anything")"}, {"1"});
}

TEST(JsonSchema, PatternIsTheWholeStringByDefault) {
  ExpectLanguage(R"({"type": "string", "pattern": "^[A-Z]{3}-\\d+$"})", {R"("ABC-1")", R"("XYZ-0042")"},
                 {R"("ABC-")", R"("abc-1")", R"("xABC-1")", R"("ABC-1x")"});
  ExpectLanguage(R"({"type": "string", "pattern": "[a-z]+"})", {R"("abc")"}, {R"("ab1")", R"("")"});
  // Characters that JSON escapes are written escaped.
  ExpectLanguage(R"({"type": "string", "pattern": "\"[\\\\/]\n"})", {R"("\"\\\n")", R"("\"/\n")"}, {"\"\"\\\n\""});
  JsonSchemaOptions search;
  search.pattern_anchoring = RegexAnchoring::kSearch;
  ExpectLanguage(R"({"type": "string", "pattern": "[0-9]{2}"})", {R"("12")", R"("ab12cd")", R"("x\"99")"}, {R"("1a2")"},
                 search);
  ExpectLanguage(R"({"type": "string", "pattern": "^ab"})", {R"("ab")", R"("abc")"}, {R"("cab")"}, search);
  ExpectError(R"js({"properties": {"code": {"type": "string", "pattern": "a(?=b)"}}})js", ErrorCode::kUnsupported,
              "json schema /properties/code/pattern: regex: lookahead");
}

TEST(JsonSchema, RequiredAndOptionalPropertiesInDeclarationOrder) {
  const char* schema = R"({"type": "object", "properties": {
      "name": {"type": "string"}, "age": {"type": "integer"}, "email": {"type": "string"}, "tags": {"type": "array"}},
      "required": ["age", "name"], "additionalProperties": false})";
  ExpectLanguage(
      schema,
      {R"({"name":"a","age":1})", R"({"name":"a","age":1,"email":"e"})", R"({"name":"a","age":1,"tags":[]})",
       R"({"name":"a","age":1,"email":"e","tags":[1]})"},
      {R"({"name":"a"})", R"({"age":1})", R"({"age":1,"name":"a"})", R"({"name":"a","age":1,"tags":[],"email":"e"})",
       R"({"name":"a","age":1,"email":"e","email":"f"})", R"({"name":"a","age":1,"other":1})",
       R"({"name":"a","age":1,})", R"({"name":"a","age":"1"})", R"({})"});
  // No required property: any subset of the properties, in order, or none.
  ExpectLanguage(
      R"({"properties": {"a": {"const": 1}, "b": {"const": 2}, "c": {"const": 3}}, "additionalProperties": false})",
      {"{}", R"({"a":1})", R"({"b":2})", R"({"c":3})", R"({"a":1,"c":3})", R"({"b":2,"c":3})",
       R"({"a":1,"b":2,"c":3})"},
      {R"({"c":3,"a":1})", R"({"a":1,"a":1})", R"({,"a":1})", R"({"a":2})"});
}

TEST(JsonSchema, AdditionalProperties) {
  // Default (JSON Schema): other keys with any values, after the declared ones, never a declared
  // name again.
  const char* open = R"({"properties": {"id": {"type": "integer"}, "idx": {"type": "string"}}, "required": ["id"]})";
  ExpectLanguage(
      open,
      {R"({"id":1})", R"({"id":1,"x":[1,{}]})", R"({"id":1,"idx":"a","i":null,"idxx":2,"":3})", R"({"id":1,"Id":2})"},
      {R"({"id":1,"id":2})", R"({"id":1,"idx":"a","idx":"b"})", R"({"x":1})", R"({"id":1,"x":1,"idx":"a"})"});
  JsonSchemaOptions closed;
  closed.closed_objects = true;
  ExpectLanguage(open, {R"({"id":1,"idx":"a"})"}, {R"({"id":1,"x":1})"}, closed);
  ExpectLanguage(R"({"properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "boolean"}})",
                 {R"({"a":1,"b":true,"c":false})", R"({"b":true})"}, {R"({"a":1,"b":1})", R"({"a":true})"});
  // No properties: any object, or a map of the additionalProperties schema, counted.
  ExpectLanguage(R"({"type": "object"})", {"{}", R"({"k":{"n":[1,2]},"k2":"v"})"}, {"[]", R"({"k"})", R"({1:2})"});
  ExpectLanguage(
      R"({"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1, "maxProperties": 2})",
      {R"({"a":1})", R"({"a":1,"b":2})"}, {"{}", R"({"a":1,"b":2,"c":3})", R"({"a":"x"})"});
  ExpectLanguage(R"({"type": "object", "additionalProperties": false})", {"{}"}, {R"({"a":1})"});
  // Keys that need escaping, and a required key that is not described.
  ExpectLanguage(
      R"({"properties": {"say \"hi\"": {"type": "integer"}, "é/~": {"type": "null"}}, "required": ["say \"hi\"", "z"]})",
      {R"({"say \"hi\"":1,"z":[]})", R"({"say \"hi\"":1,"z":0,"é/~":null})"}, {R"({"say \"hi\"":1})"});
}

TEST(JsonSchema, EnumAndConst) {
  ExpectLanguage(R"({"enum": ["red", "green", 3, null, {"a": [1, true]}, 1.5]})",
                 {R"("red")", R"("green")", "3", "null", R"({"a":[1,true]})", "1.5"},
                 {R"("blue")", "4", R"({"a": [1, true]})", R"("Red")"});
  ExpectLanguage(R"({"const": "fixed"})", {R"("fixed")"}, {R"("other")"});
  ExpectLanguage(R"({"type": "string", "enum": ["a", 1, "b"]})", {R"("a")", R"("b")"}, {"1"});
  ExpectLanguage(R"({"enum": ["tab\there", "é"]})", {R"("tab\there")", R"("é")"}, {"\"tab\there\""});
  ExpectError(R"({"enum": []})", ErrorCode::kInvalidArgument, "enum must be a non-empty array");
  ExpectError(R"({"type": "integer", "enum": ["a"]})", ErrorCode::kInvalidArgument, "no value of enum");
}

TEST(JsonSchema, Arrays) {
  const char* counted = R"({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 4})";
  auto g = Compile(counted);
  for (int n = 0; n <= 6; ++n) {
    std::string text = "[";
    for (int i = 0; i < n; ++i) text += (i ? "," : "") + std::to_string(i);
    text += "]";
    EXPECT_EQ(Matches(g, text), n >= 2 && n <= 4) << text;
  }
  EXPECT_FALSE(Matches(g, R"([1,"2"])"));
  ExpectLanguage(R"({"items": {"type": "string"}, "maxItems": 1})", {"[]", R"(["a"])"}, {R"(["a","b"])", "[1]"});
  ExpectLanguage(R"({"type": "array", "minItems": 1})", {"[1]", R"([1,"a",[]])"}, {"[]"});
  ExpectLanguage(R"({"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false})",
                 {"[]", "[1]", R"([1,"a"])"}, {R"([1,"a",2])", R"(["a"])", R"([1,2])"});
  ExpectLanguage(
      R"({"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": {"type": "boolean"}, "minItems": 3})",
      {R"([1,"a",true])", R"([1,"a",true,false])"}, {R"([1,"a"])", R"([1,"a",1])"});
  ExpectLanguage(R"({"items": [{"const": 1}, {"const": 2}], "additionalItems": false, "minItems": 1})",  // draft 7
                 {"[1]", "[1,2]"}, {"[]", "[2]", "[1,2,3]"});
  ExpectLanguage(R"({"prefixItems": [{"const": 1}, {"const": 2}, {"const": 3}], "maxItems": 2})",
                 {"[]", "[1]", "[1,2]"}, {"[1,2,3]"});
  ExpectLanguage(R"({"type": "array", "items": {"type": "array", "items": {"type": "number"}}})",
                 {"[[1,2],[],[3.5]]", "[]"}, {"[[1,[2]]]", "[1]"});
  ExpectError(R"({"type": "array", "minItems": 3, "maxItems": 2})", ErrorCode::kInvalidArgument, "minItems");
  ExpectError(R"({"prefixItems": [{}], "items": false, "minItems": 2})", ErrorCode::kInvalidArgument, "minItems");
}

TEST(JsonSchema, AnyOfOneOfAndTypeLists) {
  ExpectLanguage(R"({"type": ["string", "null"]})", {R"("a")", "null"}, {"1", "[]"});
  ExpectLanguage(R"({"anyOf": [{"type": "integer", "minimum": 10, "maximum": 20}, {"type": "boolean"}]})",
                 {"10", "20", "true"}, {"9", "21", "null"});
  ExpectLanguage(R"({"oneOf": [{"const": "a"}, {"type": "array", "maxItems": 1}]})", {R"("a")", "[]", "[1]"},
                 {R"("b")", "[1,2]"});
  // Keywords next to anyOf apply to every branch.
  ExpectLanguage(
      R"({"type": "object", "properties": {"kind": {"type": "string"}}, "required": ["kind"], "additionalProperties": false,
                     "anyOf": [{"properties": {"n": {"type": "integer"}}, "required": ["n"]},
                               {"properties": {"s": {"type": "string"}}, "required": ["s"]}]})",
      {R"({"kind":"a","n":1})", R"({"kind":"a","s":"x"})"},
      {R"({"kind":"a"})", R"({"kind":"a","n":"x"})", R"({"n":1})"});
}

TEST(JsonSchema, AllOfMergesSchemas) {
  ExpectLanguage(R"({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                               {"properties": {"b": {"type": "string"}}, "required": ["b"], "additionalProperties": false}]})",
                 {R"({"a":1,"b":"x"})"}, {R"({"a":1})", R"({"b":"x"})", R"({"a":1,"b":"x","c":1})"});
  ExpectLanguage(R"({"allOf": [{"type": "integer", "minimum": 0}, {"maximum": 5, "minimum": 2}]})", {"2", "5"},
                 {"1", "6"});
  ExpectLanguage(R"({"$defs": {"base": {"properties": {"id": {"type": "integer"}}, "required": ["id"]}},
                     "allOf": [{"$ref": "#/$defs/base"}, {"properties": {"id": {"minimum": 1}}, "additionalProperties": false}]})",
                 {R"({"id":1})"}, {R"({"id":0})", R"({})"});
  ExpectError(R"({"allOf": [{"pattern": "a"}, {"pattern": "b"}]})", ErrorCode::kUnsupported,
              "allOf: members set 'pattern' differently");
  ExpectError(R"({"allOf": [{"type": "string"}, {"type": "integer"}]})", ErrorCode::kInvalidArgument,
              "nothing in common");
}

TEST(JsonSchema, RefsAndRecursion) {
  // A recursive tree: one rule per definition.
  const char* tree = R"({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
      "value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
      "required": ["value"], "additionalProperties": false}}})";
  ExpectLanguage(
      tree,
      {R"({"value":1})", R"({"value":1,"children":[{"value":2},{"value":3,"children":[{"value":4,"children":[]}]}]})"},
      {R"({"value":1,"children":[{"children":[]}]})", R"({"value":1,"children":[1]})"});
  // definitions (draft 7), a linked list through "#", and a $ref with a description next to it.
  ExpectLanguage(R"({"type": "object", "properties": {"v": {"$ref": "#/definitions/small", "description": "d"},
                     "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}, "required": ["v", "next"], "additionalProperties": false,
                     "definitions": {"small": {"type": "integer", "minimum": 0, "maximum": 9}}})",
                 {R"({"v":1,"next":null})", R"({"v":1,"next":{"v":2,"next":{"v":3,"next":null}}})"},
                 {R"({"v":10,"next":null})", R"({"v":1,"next":{"v":2}})"});
  // A $ref next to other keywords: both apply.
  ExpectLanguage(R"({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "maxLength": 2})", {R"("ab")"},
                 {R"("abc")", "1"});
  // Escaped pointer tokens.
  ExpectLanguage(R"({"$defs": {"a/b": {"const": 1}, "c~d": {"const": 2}, "e f": {"const": 3}},
                     "anyOf": [{"$ref": "#/$defs/a~1b"}, {"$ref": "#/$defs/c~0d"}, {"$ref": "#/$defs/e%20f"}]})",
                 {"1", "2", "3"}, {"4"});
  ExpectError(R"({"$ref": "#/$defs/missing"})", ErrorCode::kInvalidArgument, "does not resolve");
  ExpectError(R"({"$ref": "https://example.com/schema.json"})", ErrorCode::kUnsupported,
              "only references within the document");
  // A cycle of references that matches nothing first is left recursion: Grammar::Parse refuses
  // the grammar, naming the rule.
  auto text = JsonSchemaTextToGbnf(
      R"({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}, "$ref": "#/$defs/a"})");
  ASSERT_TRUE(text.ok()) << text.status().message();
  auto g = Grammar::Parse(*text);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("left-recursive"), std::string::npos) << g.status().message();
}

TEST(JsonSchema, RuleNamesAreValidAndUnique) {
  const char* schema = R"({"type": "object", "properties": {
      "first name": {"type": "string", "maxLength": 3}, "first-name": {"type": "string", "maxLength": 4},
      "item-1": {"type": "array", "items": {"type": "integer", "minimum": 0}}, "root": {"type": "string", "minLength": 1},
      "日本": {"type": "string", "minLength": 2}, "": {"type": "integer", "maximum": 3}, "string": {"type": "string", "minLength": 5},
      "a": {"type": "object", "properties": {"b c": {"type": "string", "pattern": "x+"}}}}})";
  auto text = JsonSchemaTextToGbnf(schema);
  ASSERT_TRUE(text.ok()) << text.status().message();
  const std::regex rule_line("^[a-zA-Z0-9-]+ ::= .*");
  std::set<std::string> names;
  size_t start = 0;
  while (start < text->size()) {
    const size_t end = text->find('\n', start);
    const std::string line = text->substr(start, end - start);
    EXPECT_TRUE(std::regex_match(line, rule_line)) << line;
    EXPECT_TRUE(names.insert(line.substr(0, line.find(' '))).second) << "defined twice: " << line;
    start = end + 1;
  }
  ExpectLanguage(
      schema,
      {R"({"first name":"abc","first-name":"abcd","item-1":[0],"root":"r","日本":"日本","":3,"string":"sssss","a":{"b c":"xx"}})"},
      {R"({"first name":"abcd"})", R"({"":4})", R"({"a":{"b c":"y"}})"});
  // Grammar::Parse names the helpers of a rule "<rule>-<N>": no generated name may look like one
  // ("root-1" + "-" + "0" once became "root-10", root's tenth helper).
  ExpectLanguage(R"({"properties": {"0": {"maxLength": 3}, "c1": {"enum": [1, "x"]}}, "anyOf": [{}, {}]})",
                 {R"({"0":"abc","c1":"x"})"}, {R"({"0":"abcd"})"});
}

TEST(JsonSchema, RandomTextsAreValidJsonOfTheSchema) {
  ExpectSound(R"({"type": "integer", "minimum": -50, "maximum": 1000})", [](const json& v) {
    return v.is_number_integer() && v.get<int64_t>() >= -50 && v.get<int64_t>() <= 1000;
  });
  ExpectSound(R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}, "n": {"type": "number"},
                  "tags": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 3}}, "required": ["name"],
                  "additionalProperties": false})",
              [](const json& v) {
                if (!v.is_object() || !v.contains("name") || !v["name"].is_string()) return false;
                for (const auto& [k, x] : v.items()) {
                  if (k != "name" && k != "n" && k != "tags") return false;
                }
                return !v.contains("tags") || (v["tags"].is_array() && v["tags"].size() <= 3);
              });
  ExpectSound(R"({"properties": {"a": {"type": "null"}}})", [](const json& v) {
    return v.is_object() && (!v.contains("a") || v["a"].is_null());  // other keys allowed, "a" once
  });
  ExpectSound(R"({})", [](const json&) { return true; });
  ExpectSound(R"({"type": "string", "pattern": "^[a-c\"\\\\]{2,4}$"})", [](const json& v) {
    return v.is_string() && std::regex_match(v.get<std::string>(), std::regex(R"([a-c"\\]{2,4})"));
  });
}

TEST(JsonSchema, JsonValueAndObjectGrammars) {
  auto value = Grammar::Parse(JsonValueGbnf());
  auto object = Grammar::Parse(JsonObjectGbnf());
  ASSERT_TRUE(value.ok() && object.ok());
  const json sample = json::parse(R"({"a": [1, -2.5e3, true, false, null, "s\"\n", {"b": {}}, []], "é": "😀"})");
  for (const std::string& text : {sample.dump(), sample.dump(2), sample["a"].dump()}) {
    EXPECT_TRUE(Matches(*value, text)) << text;
    EXPECT_EQ(Matches(*object, text), text[0] == '{') << text;
  }
  for (const char* bad : {"", "{", R"({"a" 1})", "[1,]", "{,}", "tru", "'a'", R"({"a":1}})"}) {
    EXPECT_FALSE(Matches(*value, bad)) << bad;
  }
  JsonSchemaOptions compact;
  compact.compact = true;
  auto tight = Grammar::Parse(JsonValueGbnf(compact));
  ASSERT_TRUE(tight.ok());
  EXPECT_TRUE(Matches(*tight, sample.dump()));
  EXPECT_FALSE(Matches(*tight, sample.dump(2)));
}

TEST(JsonSchema, NlohmannJsonOverloadSortsKeys) {
  const nlohmann::json schema = nlohmann::json::parse(
      R"({"properties": {"b": {"const": 1}, "a": {"const": 2}}, "required": ["b", "a"], "additionalProperties": false})");
  auto text = JsonSchemaToGbnf(schema);
  ASSERT_TRUE(text.ok()) << text.status().message();
  auto g = Grammar::Parse(*text);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(Matches(*g, R"({"a":2,"b":1})"));
  EXPECT_FALSE(Matches(*g, R"({"b":1,"a":2})"));
}

TEST(JsonSchema, ErrorsNameTheKeywordAndItsPath) {
  ExpectError(R"({"properties": {"age": {"type": "integer", "minimum": "0"}}})", ErrorCode::kInvalidArgument,
              "json schema /properties/age: minimum must be a number");
  ExpectError(R"({"properties": {"a": {"not": {"type": "null"}}}})", ErrorCode::kUnsupported,
              "json schema /properties/a: the keyword 'not' is not supported");
  ExpectError(R"({"items": {"if": {}, "then": {}}})", ErrorCode::kUnsupported, "/items: the keyword 'if'");
  ExpectError(R"({"type": "integer", "multipleOf": 3})", ErrorCode::kUnsupported, "(root): the keyword 'multipleOf'");
  ExpectError(R"({"patternProperties": {"^x": {}}})", ErrorCode::kUnsupported, "'patternProperties'");
  ExpectError(R"({"type": "array", "uniqueItems": true})", ErrorCode::kUnsupported, "uniqueItems true");
  ExpectError(R"({"anyOf": [{"type": "null"}, {"prefixItems": [{"$ref": "#/$defs/x"}]}]})", ErrorCode::kInvalidArgument,
              "json schema /anyOf/1/prefixItems/0: $ref '#/$defs/x' does not resolve");
  ExpectError(R"({"type": "strin"})", ErrorCode::kInvalidArgument, "unknown type \"strin\"");
  ExpectError(R"({"type": "string", "maxLength": -1})", ErrorCode::kInvalidArgument,
              "maxLength must be a non-negative integer");
  ExpectError(R"({"type": "string", "minLength": 5, "maxLength": 2})", ErrorCode::kInvalidArgument,
              "maxLength is below minLength");
  ExpectError(R"({"properties": {"a": false}, "required": ["a"]})", ErrorCode::kInvalidArgument,
              "json schema /properties/a: the schema false allows no value");
  ExpectError(R"({"properties": 3})", ErrorCode::kInvalidArgument, "properties must be an object");
  ExpectError(R"({"required": ["x"], "additionalProperties": false})", ErrorCode::kInvalidArgument,
              "required property 'x'");
  ExpectError(R"({"type": "object", "properties": {"a": {}}, "minProperties": 2})", ErrorCode::kUnsupported,
              "minProperties");
  ExpectError(R"([1, 2])", ErrorCode::kInvalidArgument, "a schema must be an object or a boolean");
  ExpectError(R"({"type": "string",)", ErrorCode::kInvalidArgument, "json schema: ");
}

TEST(JsonSchema, HugeCountsAndGrammarsAreRefused) {
  ExpectError(R"({"type": "string", "maxLength": 100000})", ErrorCode::kUnsupported,
              "maxLength 100000 is above the limit of 10000");
  ExpectError(R"({"type": "array", "maxItems": 1e9})", ErrorCode::kUnsupported, "maxItems");
  ExpectError(R"({"type": "string", "pattern": "a{1,50000}"})", ErrorCode::kUnsupported, "above the limit");
  json many = {{"type", "object"}, {"properties", json::object()}};
  for (int i = 0; i < 2000; ++i) {
    many["properties"]["property_number_" + std::to_string(i)] = {{"type", "string"}, {"maxLength", 10}};
  }
  JsonSchemaOptions small;
  small.max_grammar_bytes = 50000;
  auto text = JsonSchemaToGbnf(many, small);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(text.status().message().find("over 50000 bytes"), std::string::npos) << text.status().message();
  // Deep nesting is refused, not a stack overflow.
  json deep = {{"type", "integer"}};
  for (int i = 0; i < 500; ++i) deep = {{"type", "array"}, {"items", deep}};
  EXPECT_EQ(JsonSchemaToGbnf(deep).status().code(), ErrorCode::kInvalidArgument);
}

// Schemas as tools write them: pydantic's (titles, $defs, anyOf with null, defaults) and an
// OpenAI function's parameters.
TEST(JsonSchema, RealWorldSchemas) {
  const char* pydantic = R"({
    "$defs": {"Pet": {"properties": {"kind": {"enum": ["cat", "dog"], "title": "Kind", "type": "string"},
                                     "age": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}], "default": null, "title": "Age"}},
                      "required": ["kind"], "title": "Pet", "type": "object"}},
    "properties": {"name": {"title": "Name", "type": "string"},
                   "pets": {"items": {"$ref": "#/$defs/Pet"}, "title": "Pets", "type": "array"},
                   "born": {"format": "date", "title": "Born", "type": "string"}},
    "required": ["name", "pets"], "title": "Owner", "type": "object"})";
  ExpectLanguage(pydantic,
                 {R"({"name": "Ann", "pets": [{"kind": "cat"}, {"kind": "dog", "age": 3}], "born": "1990-04-01"})",
                  R"({"name": "Ann", "pets": [{"kind": "dog", "age": null}]})"},
                 {R"({"name": "Ann", "pets": [{"kind": "cow"}]})",
                  R"({"name": "Ann", "pets": [{"kind": "cat", "age": -1}]})", R"({"name": "Ann"})"});
  const char* function = R"({"type": "object", "properties": {
      "location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"},
      "units": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", null]}},
      "required": ["location", "units"], "additionalProperties": false})";
  ExpectLanguage(function, {R"({"location":"Paris, France","units":"celsius"})", R"({"location":"x","units":null})"},
                 {R"({"location":"x","units":"kelvin"})", R"({"location":"x"})"});
}

}  // namespace
}  // namespace fastgen::constrained
