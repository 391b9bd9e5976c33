// Runtime values of the Jinja evaluator.
//
// The value model is @huggingface/jinja's, because templates must render exactly as it renders
// them: undefined and none are distinct; integers and floats are distinct kinds (1.0 prints as
// "1.0", but 1.0 coming from JSON is an integer, as JSON.parse cannot tell them apart); lists,
// dicts and namespaces are shared by reference (so `set ns.x = ...` is seen by every holder and
// `==` on containers is identity). Dicts keep insertion order. Booleans print as "true"/"false"
// and none prints nothing, as in the reference (not Python's True/None).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"

namespace fastgen::jinja {

class Value;
class Interpreter;
class Env;

// Containers nested deeper than this are refused: every recursive walk (printing, JSON,
// destruction) stays far from the stack limit.
inline constexpr int kMaxValueDepth = 256;

struct List {
  std::vector<Value> items;
  bool is_tuple = false;  // tuples are lists that the `iterable` test rejects, as in the reference
  int depth = 1;          // container nesting depth, maintained at construction
};

// Insertion-ordered string-keyed map. Linear lookup: template dicts hold a handful of keys.
struct Dict {
  std::vector<std::pair<std::string, Value>> entries;
  int depth = 1;  // container nesting depth; Set() keeps it up to date (a cycle makes it grow)

  const Value* Find(std::string_view key) const;
  void Set(std::string key, Value value);
};

// Positional and keyword arguments of a call, keywords in call order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  const Value* Keyword(std::string_view name) const;
  // Positional argument `index`, else keyword `name`, else nullptr.
  const Value* Get(size_t index, std::string_view name) const;
};

// A callable's view of the call site: the interpreter (for limits and macro bodies) and the
// caller's scope (the reference evaluates macro bodies in a child of the caller's scope).
struct CallSite {
  Interpreter* interpreter = nullptr;
  std::shared_ptr<Env> scope;
};

using NativeFunction = std::function<Expected<Value>(const CallArgs&, const CallSite&)>;

struct Function {
  std::string name;
  NativeFunction fn;
};

enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kFunction };

class Value {
 public:
  Value() = default;  // undefined
  static Value None() { return Value(Kind::kNone, std::monostate{}); }
  static Value Bool(bool b) { return Value(Kind::kBool, b); }
  static Value Int(int64_t i) { return Value(Kind::kInt, i); }
  static Value Float(double f) { return Value(Kind::kFloat, f); }
  static Value String(std::string s) { return Value(Kind::kString, std::move(s)); }
  static Value MakeList(std::vector<Value> items, bool is_tuple = false);
  static Value MakeDict(std::shared_ptr<Dict> dict) { return Value(Kind::kDict, std::move(dict)); }
  static Value MakeDict() { return MakeDict(std::make_shared<Dict>()); }
  static Value MakeNamespace(std::shared_ptr<Dict> d) { return Value(Kind::kNamespace, std::move(d)); }
  static Value MakeFunction(std::string name, NativeFunction fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_function() const { return kind_ == Kind::kFunction; }

  bool bool_value() const { return std::get<bool>(data_); }
  int64_t int_value() const { return std::get<int64_t>(data_); }
  double float_value() const { return std::get<double>(data_); }
  double number() const { return is_int() ? static_cast<double>(int_value()) : float_value(); }
  const std::string& str() const { return std::get<std::string>(data_); }
  List& list() const { return *std::get<std::shared_ptr<List>>(data_); }
  // Dict storage of a dict or a namespace.
  Dict& dict() const { return *std::get<std::shared_ptr<Dict>>(data_); }
  const Function& function() const { return *std::get<std::shared_ptr<Function>>(data_); }
  // Identity of a container or function (for `==`, `in`, `unique`).
  const void* identity() const;

 private:
  using Data = std::variant<std::monostate, bool, int64_t, double, std::string, std::shared_ptr<List>,
                            std::shared_ptr<Dict>, std::shared_ptr<Function>>;
  Value(Kind kind, Data data) : kind_(kind), data_(std::move(data)) {}

  Kind kind_ = Kind::kUndefined;
  Data data_;
};

// Short name of a value's kind for error messages ("string", "list", "undefined").
const char* KindName(Kind kind);

// Python/Jinja truthiness as the reference computes it (an empty dict is false, a namespace true).
bool Truthy(const Value& v);

// Container nesting depth: 0 for scalars, 1 for a flat list or dict.
int ValueDepth(const Value& v);

// How `{{ v }}` prints: floats keep ".0", booleans "true"/"false", containers as compact JSON
// with undefined members printed as `undefined`. None and undefined print nothing.
Status AppendRendered(const Value& v, std::string* out);
// JS `value.toString()`, which `+` and `~` use: 3.0 prints "3", lists join their elements with
// ",", dicts print "[object Map]" (the reference's own quirks).
std::string JsString(const Value& v);

struct JsonOptions {
  int indent = 0;  // 0: single line (the reference treats indent=0 as no indent)
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_separators = false;
  std::string item_separator, key_separator;
  bool undefined_as_null = true;  // tojson: null; printing a container: "undefined"
};
// JSON.stringify-compatible serialization; fails on functions.
Expected<std::string> ToJson(const Value& v, const JsonOptions& options);

// `==` (JavaScript loose equality on the underlying values) and the strict equality `in` uses.
bool LooseEquals(const Value& a, const Value& b);
bool StrictEquals(const Value& a, const Value& b);
// Three-way comparison used by sort/dictsort: numbers (and booleans) together, strings together
// (optionally case-insensitive), none with none; anything else is an error.
Expected<int> CompareValues(const Value& a, const Value& b, bool case_sensitive);

// JSON input (messages, tools, extra context) to values. Integral floats become integers and
// object keys that are array indices come first, exactly as JSON.parse + Object.entries do.
Value FromJson(const nlohmann::ordered_json& j);

}  // namespace fastgen::jinja
