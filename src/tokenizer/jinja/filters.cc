// Filters and tests. Dispatch follows the reference: a filter written without parentheses and
// one written with them are looked up separately (`x | join` and `x | join(", ")` take different
// paths there), then by the operand's kind.
#include <algorithm>
#include <cmath>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/js_string.h"

namespace fastgen::jinja {
namespace {

Value Str(std::string s) { return Value::String(std::move(s)); }

Status NoFilter(const std::string& name, const Value& operand) {
  return InvalidArgument("unknown filter '" + name + "' for a value of type " + KindName(operand.kind()));
}

// Array#join of raw values: none/undefined become empty strings.
std::string JoinElement(const Value& v) {
  return (v.is_none() || v.is_undefined()) ? std::string() : JsString(v);
}

std::string FloatOrIntString(const Value& v) {
  std::string out;
  (void)AppendRendered(v, &out);  // numbers never fail to render
  return out;
}

Expected<Value> ToJsonFilter(const Value& operand, const CallArgs* args) {
  JsonOptions options;
  if (args != nullptr) {
    if (const Value* indent = args->Keyword("indent")) {
      if (!indent->is_int() && !indent->is_none()) return InvalidArgument("tojson: indent must be an integer");
      if (indent->is_int()) options.indent = static_cast<int>(std::clamp<int64_t>(indent->int_value(), -1, 64));
    }
    if (const Value* ascii = args->Keyword("ensure_ascii")) {
      if (!ascii->is_bool()) return InvalidArgument("tojson: ensure_ascii must be a boolean");
      options.ensure_ascii = ascii->bool_value();
    }
    if (const Value* sort = args->Keyword("sort_keys")) {
      if (!sort->is_bool()) return InvalidArgument("tojson: sort_keys must be a boolean");
      options.sort_keys = sort->bool_value();
    }
    if (const Value* sep = args->Keyword("separators")) {
      if (sep->is_list()) {
        const auto& parts = sep->list().items;
        if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) {
          return InvalidArgument("tojson: separators must be a tuple of two strings");
        }
        options.has_separators = true;
        options.item_separator = parts[0].str();
        options.key_separator = parts[1].str();
      } else if (!sep->is_none()) {
        return InvalidArgument("tojson: separators must be a tuple of two strings");
      }
    }
  }
  FG_ASSIGN_OR_RETURN(std::string json, ToJson(operand, options));
  return Str(std::move(json));
}

std::string Indent(const std::string& s, const std::string& pad, bool first, bool blank) {
  std::string out;
  size_t start = 0;
  for (size_t line = 0;; ++line) {
    const size_t nl = s.find('\n', start);
    const std::string_view text(s.data() + start, (nl == std::string::npos ? s.size() : nl) - start);
    if (!((!first && line == 0) || (!blank && text.empty()))) out += pad;
    out += text;
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
  }
  return out;
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Python's round() as Jinja's `round` filter uses it (extension: the reference has none).
Expected<Value> Round(const Value& operand, const CallArgs* args) {
  int64_t precision = 0;
  std::string method = "common";
  if (args != nullptr) {
    if (const Value* p = args->Get(0, "precision")) {
      if (!p->is_int()) return InvalidArgument("round: precision must be an integer");
      precision = std::clamp<int64_t>(p->int_value(), -20, 20);
    }
    if (const Value* m = args->Get(1, "method")) {
      if (!m->is_string()) return InvalidArgument("round: method must be a string");
      method = m->str();
    }
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = operand.number() * scale;
  double r = 0;
  if (method == "common") r = std::round(x);
  else if (method == "ceil") r = std::ceil(x);
  else if (method == "floor") r = std::floor(x);
  else return InvalidArgument("round: method must be common, ceil or floor");
  return Value::Float(r / scale);
}

bool IntFromString(const std::string& s, int64_t* out) {
  double d = 0;
  if (!JsParseInt(s, &d) || !std::isfinite(d) || std::fabs(d) > 9.2e18) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

// Filters written without parentheses.
Expected<Value> PlainFilter(const Value& operand, const std::string& name) {
  if (operand.is_list()) {
    const auto& items = operand.list().items;
    if (name == "list") return operand;
    if (name == "first") return items.empty() ? Value() : items.front();
    if (name == "last") return items.empty() ? Value() : items.back();
    if (name == "length" || name == "count") return Value::Int(static_cast<int64_t>(items.size()));
    if (name == "reverse") return Value::MakeList(std::vector<Value>(items.rbegin(), items.rend()));
    if (name == "sort") return SortValues(items, SortOptions{});
    if (name == "join") {
      std::string out;
      for (const Value& v : items) out += JoinElement(v);
      return Str(std::move(out));
    }
    if (name == "string") {
      JsonOptions options;
      options.undefined_as_null = false;
      FG_ASSIGN_OR_RETURN(std::string json, ToJson(operand, options));
      return Str(std::move(json));
    }
    if (name == "unique") {
      std::vector<Value> out;
      for (const Value& v : items) {
        const bool seen = std::any_of(out.begin(), out.end(), [&](const Value& o) {
          return StrictEquals(o, v) || (o.is_float() && v.is_float() && std::isnan(o.float_value()) &&
                                        std::isnan(v.float_value()));
        });
        if (!seen) out.push_back(v);
      }
      return Value::MakeList(std::move(out));
    }
    return NoFilter(name, operand);
  }
  if (operand.is_string()) {
    const std::string& s = operand.str();
    if (name == "length" || name == "count") return Value::Int(Utf16Length(s));
    if (name == "upper") return Str(JsToUpper(s));
    if (name == "lower") return Str(JsToLower(s));
    if (name == "title") return Str(JsTitle(s));
    if (name == "capitalize") return Str(JsCapitalize(s));
    if (name == "trim") return Str(std::string(JsTrim(s)));
    if (name == "indent") return Str(Indent(s, "    ", false, false));
    if (name == "join" || name == "string") return operand;
    if (name == "int") {
      int64_t v = 0;
      return Value::Int(IntFromString(s, &v) ? v : 0);
    }
    if (name == "float") {
      double d = 0;
      return Value::Float(JsParseFloat(s, &d) ? d : 0.0);
    }
    if (name == "escape" || name == "e") return Str(HtmlEscape(s));  // extension
    if (name == "list") {                                            // extension
      std::vector<Value> chars;
      for (char32_t cp : ToCodePoints(s)) {
        std::string c;
        AppendUtf8(cp, &c);
        chars.push_back(Str(std::move(c)));
      }
      return Value::MakeList(std::move(chars));
    }
    return NoFilter(name, operand);
  }
  if (operand.is_number()) {
    if (name == "abs") {
      if (operand.is_float()) return Value::Float(std::fabs(operand.float_value()));
      if (operand.int_value() == INT64_MIN) return InvalidArgument("integer overflow in abs");
      return Value::Int(std::llabs(operand.int_value()));
    }
    if (name == "int") {
      if (operand.is_int()) return operand;
      const double f = std::floor(operand.float_value());
      if (!std::isfinite(f) || std::fabs(f) > 9.2e18) return InvalidArgument("int: value out of range");
      return Value::Int(static_cast<int64_t>(f));
    }
    if (name == "float") return Value::Float(operand.number());
    if (name == "string") return Str(FloatOrIntString(operand));
    if (name == "round") return Round(operand, nullptr);  // extension
    return NoFilter(name, operand);
  }
  if (operand.is_dict()) {
    if (name == "items") return DictView(operand.dict(), "items");
    if (name == "length" || name == "count") {
      return Value::Int(static_cast<int64_t>(operand.dict().entries.size()));
    }
    FG_ASSIGN_OR_RETURN(Value member, GetMember(operand, Str(name)));
    if (member.is_function() && (name == "keys" || name == "values" || name == "dictsort" || name == "get")) {
      return member.function().fn(CallArgs{}, CallSite{});
    }
    return NoFilter(name, operand);
  }
  if (operand.is_bool()) {
    const bool b = operand.bool_value();
    if (name == "bool") return operand;
    if (name == "int") return Value::Int(b ? 1 : 0);
    if (name == "float") return Value::Float(b ? 1.0 : 0.0);
    if (name == "string") return Str(b ? "true" : "false");
    return NoFilter(name, operand);
  }
  return NoFilter(name, operand);
}

Expected<Value> SelectAttr(const Value& operand, const std::string& name, const CallArgs& args) {
  const bool select = name == "selectattr";
  for (const Value& item : operand.list().items) {
    if (!item.is_dict() && !item.is_namespace()) {
      return InvalidArgument(name + " can only be applied to a list of dicts");
    }
  }
  if (args.positional.empty() || !args.positional[0].is_string()) {
    return InvalidArgument(name + ": the attribute name must be a string");
  }
  const std::string& attr = args.positional[0].str();
  const Value* test = args.positional.size() > 1 ? &args.positional[1] : nullptr;
  if (test && !test->is_string()) return InvalidArgument(name + ": the test name must be a string");
  CallArgs test_args;
  if (args.positional.size() > 2) test_args.positional.push_back(args.positional[2]);
  std::vector<Value> out;
  for (const Value& item : operand.list().items) {
    const Value* a = item.dict().Find(attr);
    bool result = false;
    if (a != nullptr) {
      if (test) {
        FG_ASSIGN_OR_RETURN(result, ApplyTest(*a, test->str(), test_args));
      } else {
        result = Truthy(*a);
      }
    }
    if (result == select) out.push_back(item);
  }
  return Value::MakeList(std::move(out));
}

Expected<Value> Map(Interpreter& interp, const Value& operand, const CallArgs& args, const EnvPtr& env) {
  std::vector<Value> out;
  if (const Value* attr = args.Keyword("attribute")) {
    if (!attr->is_string()) return InvalidArgument("map: attribute must be a string");
    const Value* fallback = args.Keyword("default");
    for (const Value& item : operand.list().items) {
      if (!item.is_dict() && !item.is_namespace()) return InvalidArgument("map: items must be dicts");
      Value v = GetAttributePath(item, attr->str());
      out.push_back(v.is_undefined() && fallback ? *fallback : v);
    }
    return Value::MakeList(std::move(out));
  }
  // Extension: `map('upper')` applies a filter to every item, as in Python Jinja.
  if (!args.positional.empty() && args.positional[0].is_string()) {
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.keyword = args.keyword;
    const bool has_args = !rest.positional.empty() || !rest.keyword.empty();
    for (const Value& item : operand.list().items) {
      FG_ASSIGN_OR_RETURN(Value v, ApplyFilter(interp, item, args.positional[0].str(),
                                               has_args ? &rest : nullptr, env));
      out.push_back(std::move(v));
    }
    return Value::MakeList(std::move(out));
  }
  return InvalidArgument("map needs attribute= or a filter name");
}

// Filters written with parentheses.
Expected<Value> CallFilter(Interpreter& interp, const Value& operand, const std::string& name,
                           const CallArgs& args, const EnvPtr& env) {
  if (name == "join") {
    const Value* sep_v = args.Get(0, "separator");
    if (sep_v && !sep_v->is_string()) return InvalidArgument("join: separator must be a string");
    const std::string sep = sep_v ? sep_v->str() : "";
    std::vector<std::string> parts;
    if (operand.is_string()) {
      for (char32_t cp : ToCodePoints(operand.str())) {
        std::string c;
        AppendUtf8(cp, &c);
        parts.push_back(std::move(c));
      }
    } else if (operand.is_list()) {
      for (const Value& v : operand.list().items) parts.push_back(JoinElement(v));
    } else {
      return NoFilter(name, operand);
    }
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) out += sep;
      out += parts[i];
      FG_RETURN_IF_ERROR(interp.CheckSize(out.size()));
    }
    return Str(std::move(out));
  }
  if (name == "int" || name == "float") {
    const bool to_int = name == "int";
    const Value* fallback = args.Get(0, "default");
    const Value default_value = fallback ? *fallback : to_int ? Value::Int(0) : Value::Float(0);
    if (operand.is_string()) {
      if (to_int) {
        int64_t v = 0;
        return IntFromString(operand.str(), &v) ? Value::Int(v) : default_value;
      }
      double d = 0;
      return JsParseFloat(operand.str(), &d) ? Value::Float(d) : default_value;
    }
    if (operand.is_number()) return operand;
    if (operand.is_bool()) {
      return to_int ? Value::Int(operand.bool_value()) : Value::Float(operand.bool_value() ? 1 : 0);
    }
    return NoFilter(name, operand);
  }
  if (name == "default" || name == "d") {
    const Value* fallback = args.Get(0, "default_value");
    const Value* boolean = args.Get(1, "boolean");
    if (boolean && !boolean->is_bool()) return InvalidArgument("default: boolean must be a boolean");
    if (operand.is_undefined() || (boolean && boolean->bool_value() && !Truthy(operand))) {
      return fallback ? *fallback : Str("");
    }
    return operand;
  }
  if (name == "round" && operand.is_number()) return Round(operand, &args);  // extension
  if (operand.is_list()) {
    if (name == "sort") {
      SortOptions options;
      const Value* reverse = args.Get(0, "reverse");
      const Value* case_sensitive = args.Get(1, "case_sensitive");
      const Value* attribute = args.Get(2, "attribute");
      if (reverse && !reverse->is_bool()) return InvalidArgument("sort: reverse must be a boolean");
      if (case_sensitive && !case_sensitive->is_bool()) {
        return InvalidArgument("sort: case_sensitive must be a boolean");
      }
      if (attribute && !attribute->is_string() && !attribute->is_int() && !attribute->is_none()) {
        return InvalidArgument("sort: attribute must be a string or an integer");
      }
      options.reverse = reverse && reverse->bool_value();
      options.case_sensitive = case_sensitive && case_sensitive->bool_value();
      if (attribute && attribute->is_string()) options.attribute = attribute->str();
      if (attribute && attribute->is_int()) options.attribute = std::to_string(attribute->int_value());
      return SortValues(operand.list().items, options);
    }
    if (name == "selectattr" || name == "rejectattr") return SelectAttr(operand, name, args);
    if (name == "map") return Map(interp, operand, args, env);
    return NoFilter(name, operand);
  }
  if (operand.is_string()) {
    if (name == "indent") {
      const Value* width = args.Get(0, "width");
      const Value* first = args.Get(1, "first");
      const Value* blank = args.Get(2, "blank");
      std::string pad = "    ";
      if (width && width->is_int()) {
        pad.assign(static_cast<size_t>(std::clamp<int64_t>(width->int_value(), 0, 1024)), ' ');
      } else if (width && width->is_string()) {
        pad = width->str();  // Python Jinja accepts a string prefix
      } else if (width) {
        return InvalidArgument("indent: width must be a number");
      }
      std::string out = Indent(operand.str(), pad, first && Truthy(*first), blank && Truthy(*blank));
      FG_RETURN_IF_ERROR(interp.CheckSize(out.size()));
      return Str(std::move(out));
    }
    if (name == "replace") {
      FG_ASSIGN_OR_RETURN(Value out, StringReplace(operand.str(), args));
      FG_RETURN_IF_ERROR(interp.CheckSize(out.str().size()));
      return out;
    }
    return NoFilter(name, operand);
  }
  if (operand.is_dict()) {
    FG_ASSIGN_OR_RETURN(Value member, GetMember(operand, Str(name)));
    if (member.is_function() && operand.dict().Find(name) == nullptr) {
      return member.function().fn(args, CallSite{&interp, env});
    }
  }
  return NoFilter(name, operand);
}

}  // namespace

Value GetAttributePath(const Value& item, const std::string& path) {
  Value value = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (value.is_dict() || value.is_namespace()) {
      const Value* v = value.dict().Find(part);
      if (v == nullptr) return Value();
      value = *v;
    } else if (value.is_list()) {
      double index = 0;
      const auto& items = value.list().items;
      if (!JsParseInt(part, &index) || index < 0 || index >= static_cast<double>(items.size())) return Value();
      value = items[static_cast<size_t>(index)];
    } else {
      return Value();
    }
    if (dot == std::string::npos) return value;
    start = dot + 1;
  }
}

Expected<Value> SortValues(std::vector<Value> items, const SortOptions& options) {
  std::vector<Value> keys;
  keys.reserve(items.size());
  for (const Value& item : items) {
    keys.push_back(options.attribute.empty() ? item : GetAttributePath(item, options.attribute));
  }
  // A comparison sort compares every pair that ends up adjacent, so it fails exactly when two
  // keys are incomparable; checking up front keeps the comparator total.
  for (size_t i = 1; i < keys.size(); ++i) {
    FG_RETURN_IF_ERROR(CompareValues(keys[0], keys[i], true).status());
  }
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int c = *CompareValues(keys[a], keys[b], options.case_sensitive);
    return options.reverse ? c > 0 : c < 0;
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (size_t i : order) out.push_back(items[i]);
  return Value::MakeList(std::move(out));
}

Expected<Value> ApplyFilter(Interpreter& interp, const Value& operand, const std::string& name,
                            const CallArgs* args, const EnvPtr& env) {
  if (name == "safe") return operand;
  if (name == "tojson") {
    FG_ASSIGN_OR_RETURN(Value json, ToJsonFilter(operand, args));
    FG_RETURN_IF_ERROR(interp.CheckSize(json.str().size()));
    return json;
  }
  if (args == nullptr) return PlainFilter(operand, name);
  return CallFilter(interp, operand, name, *args, env);
}

Expected<bool> ApplyTest(const Value& v, const std::string& name, const CallArgs& args) {
  const Value arg = args.positional.empty() ? Value() : args.positional[0];
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.bool_value();
  if (name == "false") return v.is_bool() && !v.bool_value();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();  // extension
  if (name == "callable") return v.is_function();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return (v.is_list() && !v.list().is_tuple) || v.is_string();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "lower") return v.is_string() && v.str() == JsToLower(v.str());
  if (name == "upper") return v.is_string() && v.str() == JsToUpper(v.str());
  if (name == "odd" || name == "even") {
    if (!v.is_int()) return InvalidArgument("test '" + name + "' needs an integer");
    return (v.int_value() % 2 != 0) == (name == "odd");
  }
  if (name == "equalto" || name == "eq" || name == "sameas") return StrictEquals(v, arg);
  // Extensions (tests with arguments do not parse in the reference).
  if (name == "ne") return !StrictEquals(v, arg);
  if (name == "divisibleby") {
    if (!v.is_int() || !arg.is_int() || arg.int_value() == 0) {
      return InvalidArgument("divisibleby needs integers and a non-zero divisor");
    }
    return v.int_value() % arg.int_value() == 0;
  }
  if (name == "in") {
    if (arg.is_list()) {
      return std::any_of(arg.list().items.begin(), arg.list().items.end(),
                         [&](const Value& item) { return StrictEquals(item, v); });
    }
    if (arg.is_string() && v.is_string()) return arg.str().find(v.str()) != std::string::npos;
    if (arg.is_dict() && v.is_string()) return arg.dict().Find(v.str()) != nullptr;
    return InvalidArgument("test 'in' needs a list, string or dict argument");
  }
  if (name == "gt" || name == "lt" || name == "ge" || name == "le") {
    if (!v.is_number() || !arg.is_number()) return InvalidArgument("test '" + name + "' needs numbers");
    const double a = v.number(), b = arg.number();
    if (name == "gt") return a > b;
    if (name == "lt") return a < b;
    if (name == "ge") return a >= b;
    return a <= b;
  }
  return InvalidArgument("unknown test '" + name + "'");
}

}  // namespace fastgen::jinja
