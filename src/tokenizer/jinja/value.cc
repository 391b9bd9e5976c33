#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <cmath>

#include "tokenizer/jinja/js_string.h"

namespace fastgen::jinja {

const Value* Dict::Find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::Set(std::string key, Value value) {
  depth = std::max(depth, ValueDepth(value) + 1);
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

const Value* CallArgs::Keyword(std::string_view name) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

const Value* CallArgs::Get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  return Keyword(name);
}

Value Value::MakeList(std::vector<Value> items, bool is_tuple) {
  auto list = std::make_shared<List>();
  list->items = std::move(items);
  list->is_tuple = is_tuple;
  for (const Value& item : list->items) list->depth = std::max(list->depth, ValueDepth(item) + 1);
  return Value(Kind::kList, std::move(list));
}

Value Value::MakeFunction(std::string name, NativeFunction fn) {
  auto f = std::make_shared<Function>();
  f->name = std::move(name);
  f->fn = std::move(fn);
  return Value(Kind::kFunction, std::move(f));
}

const void* Value::identity() const {
  switch (kind_) {
    case Kind::kList: return std::get<std::shared_ptr<List>>(data_).get();
    case Kind::kDict:
    case Kind::kNamespace: return std::get<std::shared_ptr<Dict>>(data_).get();
    case Kind::kFunction: return std::get<std::shared_ptr<Function>>(data_).get();
    default: return nullptr;
  }
}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kUndefined: return "undefined";
    case Kind::kNone: return "none";
    case Kind::kBool: return "boolean";
    case Kind::kInt: return "integer";
    case Kind::kFloat: return "float";
    case Kind::kString: return "string";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "namespace";
    case Kind::kFunction: return "function";
  }
  return "?";
}

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return v.bool_value();
    case Kind::kInt: return v.int_value() != 0;
    case Kind::kFloat: return v.float_value() != 0 && !std::isnan(v.float_value());
    case Kind::kString: return !v.str().empty();
    case Kind::kList: return !v.list().items.empty();
    case Kind::kDict: return !v.dict().entries.empty();
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

int ValueDepth(const Value& v) {
  if (v.is_list()) return v.list().depth;
  if (v.is_dict() || v.is_namespace()) return v.dict().depth;
  return 0;
}

namespace {

// Integers are JS numbers in the reference: beyond 2^53 they print as the nearest double does.
std::string IntString(int64_t v) {
  constexpr int64_t kExact = int64_t{1} << 53;
  if (v > kExact || v < -kExact) return JsNumberToString(static_cast<double>(v));
  return std::to_string(v);
}

// FloatValue#toString of the reference: integral floats keep one decimal ("3.0", "-0.0").
std::string FloatRendered(double d) {
  if (d == 0 && std::signbit(d)) return "-0.0";
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e21) {
    return JsNumberToString(d) + ".0";
  }
  return JsNumberToString(d);
}

std::string JsStringDepth(const Value& v, int depth);

std::string JsElementString(const Value& v, int depth) {
  // Array#toString calls each element's RuntimeValue#toString, which is the rendered form.
  switch (v.kind()) {
    case Kind::kUndefined: return "undefined";
    case Kind::kNone: return "null";
    case Kind::kFloat: return FloatRendered(v.float_value());
    case Kind::kList:
    case Kind::kDict:
    case Kind::kNamespace: {
      JsonOptions options;
      options.undefined_as_null = false;
      auto json = ToJson(v, options);
      return json.ok() ? *json : "";
    }
    default: return JsStringDepth(v, depth + 1);
  }
}

std::string JsStringDepth(const Value& v, int depth) {
  switch (v.kind()) {
    case Kind::kUndefined: return "undefined";
    case Kind::kNone: return "null";
    case Kind::kBool: return v.bool_value() ? "true" : "false";
    case Kind::kInt: return IntString(v.int_value());
    case Kind::kFloat: return JsNumberToString(v.float_value());
    case Kind::kString: return v.str();
    case Kind::kList: {
      std::string out;
      bool first = true;
      for (const Value& item : v.list().items) {
        if (!first) out += ",";
        first = false;
        if (depth < kMaxValueDepth) out += JsElementString(item, depth);
      }
      return out;
    }
    case Kind::kDict:
    case Kind::kNamespace: return "[object Map]";
    case Kind::kFunction: return "function " + v.function().name + "() { [native code] }";
  }
  return "";
}

void AppendJsonNumber(double d, std::string* out) {
  if (!std::isfinite(d)) {
    out->append("null");
  } else {
    out->append(JsNumberToString(d));
  }
}

// Approximates String#localeCompare (ICU root collation) for sort_keys: punctuation before
// digits before letters, letters case-insensitive first with lowercase first on ties.
int LocaleCompare(const std::string& a, const std::string& b) {
  const auto klass = [](unsigned char c) {
    if (c >= '0' && c <= '9') return 1;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return 2;
    return 0;
  };
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    const int kx = klass(x), ky = klass(y);
    if (kx != ky) return kx < ky ? -1 : 1;
    const int lx = std::tolower(x), ly = std::tolower(y);
    if (lx != ly) return lx < ly ? -1 : 1;
  }
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return std::islower(static_cast<unsigned char>(a[i])) ? -1 : 1;
  }
  return 0;
}

Status AppendJson(const Value& v, const JsonOptions& o, int depth, std::string* out) {
  if (depth > kMaxValueDepth) return InvalidArgument("tojson: value nested too deeply");
  std::string item_sep = ", ", key_sep = ": ";
  if (o.has_separators) {
    item_sep = o.item_separator;
    key_sep = o.key_separator;
  } else if (o.indent > 0) {
    item_sep = ",";
  }
  const std::string indent_unit(static_cast<size_t>(std::max(o.indent, 0)), ' ');
  std::string base_pad = "\n", child_pad;
  for (int i = 0; i < depth; ++i) base_pad += indent_unit;
  child_pad = base_pad + indent_unit;

  switch (v.kind()) {
    case Kind::kNone: out->append("null"); return Status::Ok();
    case Kind::kUndefined: out->append(o.undefined_as_null ? "null" : "undefined"); return Status::Ok();
    case Kind::kBool: out->append(v.bool_value() ? "true" : "false"); return Status::Ok();
    case Kind::kInt: out->append(IntString(v.int_value())); return Status::Ok();
    case Kind::kFloat: AppendJsonNumber(v.float_value(), out); return Status::Ok();
    case Kind::kString: {
      if (!o.ensure_ascii) {
        AppendJsonString(v.str(), out);
      } else {
        std::string s;
        AppendJsonString(v.str(), &s);
        out->append(JsonEnsureAscii(s));
      }
      return Status::Ok();
    }
    case Kind::kList: {
      const auto& items = v.list().items;
      out->push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out->append(item_sep);
        if (o.indent > 0) out->append(child_pad);
        FG_RETURN_IF_ERROR(AppendJson(items[i], o, depth + 1, out));
      }
      if (o.indent > 0 && !items.empty()) out->append(base_pad);
      out->push_back(']');
      return Status::Ok();
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& e : v.dict().entries) entries.push_back(&e);
      if (o.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) {
          return LocaleCompare(a->first, b->first) < 0;
        });
      }
      out->push_back('{');
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) out->append(item_sep);
        if (o.indent > 0) out->append(child_pad);
        std::string key;
        AppendJsonString(entries[i]->first, &key);
        out->append(o.ensure_ascii ? JsonEnsureAscii(key) : key);
        out->append(key_sep);
        FG_RETURN_IF_ERROR(AppendJson(entries[i]->second, o, depth + 1, out));
      }
      if (o.indent > 0 && !entries.empty()) out->append(base_pad);
      out->push_back('}');
      return Status::Ok();
    }
    case Kind::kFunction:
      return InvalidArgument("cannot convert a function to JSON");
  }
  return Status::Ok();
}

}  // namespace

Status AppendRendered(const Value& v, std::string* out) {
  switch (v.kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return Status::Ok();
    case Kind::kFloat: out->append(FloatRendered(v.float_value())); return Status::Ok();
    case Kind::kList:
    case Kind::kDict:
    case Kind::kNamespace: {
      JsonOptions options;
      options.undefined_as_null = false;
      FG_ASSIGN_OR_RETURN(std::string json, ToJson(v, options));
      out->append(json);
      return Status::Ok();
    }
    default: out->append(JsString(v)); return Status::Ok();
  }
}

std::string JsString(const Value& v) { return JsStringDepth(v, 0); }

Expected<std::string> ToJson(const Value& v, const JsonOptions& options) {
  std::string out;
  FG_RETURN_IF_ERROR(AppendJson(v, options, 0, &out));
  return out;
}

bool StrictEquals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.number() == b.number();
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return true;
    case Kind::kBool: return a.bool_value() == b.bool_value();
    case Kind::kString: return a.str() == b.str();
    default: return a.identity() == b.identity();
  }
}

bool LooseEquals(const Value& a, const Value& b) {
  const bool a_nullish = a.is_none() || a.is_undefined();
  const bool b_nullish = b.is_none() || b.is_undefined();
  if (a_nullish || b_nullish) return a_nullish && b_nullish;
  // JS converts booleans to numbers, and compares a number with a string numerically.
  const auto as_number = [](const Value& v, double* out) {
    if (v.is_number()) *out = v.number();
    else if (v.is_bool()) *out = v.bool_value() ? 1 : 0;
    else if (v.is_string()) *out = JsStringToNumber(v.str());
    else return false;
    return true;
  };
  if (a.kind() == b.kind() || (a.is_number() && b.is_number())) return StrictEquals(a, b);
  const bool a_prim = a.is_number() || a.is_bool() || a.is_string();
  const bool b_prim = b.is_number() || b.is_bool() || b.is_string();
  if (a_prim && b_prim) {
    double x = 0, y = 0;
    as_number(a, &x);
    as_number(b, &y);
    return x == y;
  }
  return false;  // containers against primitives: the reference's ToPrimitive corner, not modelled
}

Expected<int> CompareValues(const Value& a, const Value& b, bool case_sensitive) {
  if (a.is_none() && b.is_none()) return 0;
  if (a.is_undefined() && b.is_undefined()) return 0;
  const auto numeric = [](const Value& v) { return v.is_number() || v.is_bool(); };
  if (numeric(a) && numeric(b)) {
    const double x = a.is_bool() ? (a.bool_value() ? 1 : 0) : a.number();
    const double y = b.is_bool() ? (b.bool_value() ? 1 : 0) : b.number();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const std::string x = case_sensitive ? a.str() : JsToLower(a.str());
    const std::string y = case_sensitive ? b.str() : JsToLower(b.str());
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return InvalidArgument(std::string("cannot compare ") + KindName(a.kind()) + " with " +
                         KindName(b.kind()));
}

namespace {

// Object.entries lists "array index" keys (canonical decimal integers below 2^32 - 1) first, in
// ascending numeric order, then the other keys in insertion order.
bool IsArrayIndexKey(const std::string& key, uint64_t* index) {
  if (key.empty() || key.size() > 10) return false;
  if (key.size() > 1 && key[0] == '0') return false;
  uint64_t v = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v >= 4294967295ull) return false;
  *index = v;
  return true;
}

Value FromJsonDepth(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth) return Value::None();
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::None();
    case nlohmann::ordered_json::value_t::boolean: return Value::Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::Int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::Int(static_cast<int64_t>(u));
      return Value::Float(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: {
      const double d = j.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) {
        return Value::Int(static_cast<int64_t>(d));
      }
      return Value::Float(d);
    }
    case nlohmann::ordered_json::value_t::string: return Value::String(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(FromJsonDepth(e, depth + 1));
      return Value::MakeList(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto dict = std::make_shared<Dict>();
      std::vector<std::pair<uint64_t, const std::string*>> index_keys;
      for (auto it = j.begin(); it != j.end(); ++it) {
        uint64_t index = 0;
        if (IsArrayIndexKey(it.key(), &index)) index_keys.emplace_back(index, &it.key());
      }
      std::sort(index_keys.begin(), index_keys.end());
      for (const auto& [index, key] : index_keys) {
        dict->Set(*key, FromJsonDepth(j.at(*key), depth + 1));
      }
      for (auto it = j.begin(); it != j.end(); ++it) {
        uint64_t index = 0;
        if (!IsArrayIndexKey(it.key(), &index)) {
          dict->Set(it.key(), FromJsonDepth(it.value(), depth + 1));
        }
      }
      return Value::MakeDict(std::move(dict));
    }
    default: return Value();  // binary / discarded: nothing a template could use
  }
}

}  // namespace

Value FromJson(const nlohmann::ordered_json& j) { return FromJsonDepth(j, 0); }

}  // namespace fastgen::jinja
