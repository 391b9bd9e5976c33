// Attribute access, the methods of strings and dicts, and the global functions.
#include <ctime>
#include <limits>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/js_string.h"

namespace fastgen::jinja {
namespace {

Value Str(std::string s) { return Value::String(std::move(s)); }

// A method bound to its receiver, as `"abc".upper` is a function value in the reference.
Value Method(std::string name, std::function<Expected<Value>(const CallArgs&)> fn) {
  return Value::MakeFunction(std::move(name),
                             [fn = std::move(fn)](const CallArgs& args, const CallSite&) {
                               return fn(args);
                             });
}

Expected<bool> MatchesAffix(const std::string& s, const Value& pattern, bool prefix,
                            const char* method) {
  const auto one = [&](const std::string& p) {
    if (p.size() > s.size()) return false;
    return prefix ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  if (pattern.is_string()) return one(pattern.str());
  if (pattern.is_list()) {
    for (const Value& item : pattern.list().items) {
      if (!item.is_string()) return InvalidArgument(std::string(method) + "() tuple elements must be strings");
      if (one(item.str())) return true;
    }
    return false;
  }
  return InvalidArgument(std::string(method) + "() argument must be a string or tuple of strings");
}

// str.split following Python: no separator splits on runs of whitespace (JS \s here) and drops
// empty ends; a separator splits exactly; maxsplit limits the number of splits.
Expected<Value> Split(const std::string& s, const CallArgs& args) {
  const Value* sep = args.Get(0, "sep");
  const Value* max_v = args.Get(1, "maxsplit");
  if (sep && !sep->is_string() && !sep->is_none()) return InvalidArgument("split(): sep must be a string or none");
  if (max_v && !max_v->is_int()) return InvalidArgument("split(): maxsplit must be an integer");
  const int64_t maxsplit = max_v ? max_v->int_value() : -1;
  std::vector<Value> parts;
  if (!sep || sep->is_none()) {
    std::string_view text = JsTrimStart(s);
    size_t pos = 0;
    while (pos < text.size()) {
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
        parts.push_back(Str(std::string(text.substr(pos))));
        break;
      }
      size_t end = pos;
      while (end < text.size()) {
        size_t next = end;
        if (IsJsWhitespace(DecodeUtf8(text, &next))) break;
        end = next;
      }
      parts.push_back(Str(std::string(text.substr(pos, end - pos))));
      pos = end;
      while (pos < text.size()) {  // skip the whitespace run
        size_t next = pos;
        if (!IsJsWhitespace(DecodeUtf8(text, &next))) break;
        pos = next;
      }
    }
    return Value::MakeList(std::move(parts));
  }
  const std::string& separator = sep->str();
  if (separator.empty()) return InvalidArgument("split(): empty separator");
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(separator, pos);
    if (hit == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit)) {
      parts.push_back(Str(s.substr(pos)));
      break;
    }
    parts.push_back(Str(s.substr(pos, hit - pos)));
    pos = hit + separator.size();
  }
  return Value::MakeList(std::move(parts));
}

Value StringMember(const std::string& s, const std::string& name) {
  const auto no_args = [&](std::string (*fn)(std::string_view)) {
    return Method(name, [s, fn](const CallArgs&) -> Expected<Value> { return Str(fn(s)); });
  };
  if (name == "length") return Value::Int(Utf16Length(s));
  if (name == "upper") return no_args(&JsToUpper);
  if (name == "lower") return no_args(&JsToLower);
  if (name == "title") return no_args(&JsTitle);
  if (name == "capitalize") return no_args(&JsCapitalize);
  // The reference ignores strip's argument: `s.strip('\n')` strips all whitespace.
  if (name == "strip") return no_args([](std::string_view v) { return std::string(JsTrim(v)); });
  if (name == "lstrip") return no_args([](std::string_view v) { return std::string(JsTrimStart(v)); });
  if (name == "rstrip") return no_args([](std::string_view v) { return std::string(JsTrimEnd(v)); });
  if (name == "startswith" || name == "endswith") {
    const bool prefix = name == "startswith";
    return Method(name, [s, prefix](const CallArgs& args) -> Expected<Value> {
      const char* method = prefix ? "startswith" : "endswith";
      if (args.positional.empty()) return InvalidArgument(std::string(method) + "() requires an argument");
      FG_ASSIGN_OR_RETURN(bool match, MatchesAffix(s, args.positional[0], prefix, method));
      return Value::Bool(match);
    });
  }
  if (name == "split") {
    return Method(name, [s](const CallArgs& args) { return Split(s, args); });
  }
  if (name == "replace") {
    return Method(name, [s](const CallArgs& args) -> Expected<Value> {
      return StringReplace(s, args);
    });
  }
  return Value();
}

Expected<Value> DictSort(const Dict& dict, const CallArgs& args) {
  const Value* case_v = args.Get(0, "case_sensitive");
  const Value* by_v = args.Get(1, "by");
  const Value* reverse_v = args.Get(2, "reverse");
  if (case_v && !case_v->is_bool()) return InvalidArgument("dictsort: case_sensitive must be a boolean");
  if (by_v && (!by_v->is_string() || (by_v->str() != "key" && by_v->str() != "value"))) {
    return InvalidArgument("dictsort: by must be 'key' or 'value'");
  }
  if (reverse_v && !reverse_v->is_bool()) return InvalidArgument("dictsort: reverse must be a boolean");
  const bool by_value = by_v && by_v->str() == "value";
  std::vector<Value> pairs;
  for (const auto& [k, v] : dict.entries) pairs.push_back(Value::MakeList({Str(k), v}));
  return SortValues(std::move(pairs), SortOptions{
                                          .reverse = reverse_v && reverse_v->bool_value(),
                                          .case_sensitive = case_v && case_v->bool_value(),
                                          .attribute = by_value ? "1" : "0",
                                      });
}

Value DictMember(const Value& object, const std::string& name) {
  const Dict& dict = object.dict();
  if (name == "get") {
    return Method(name, [object](const CallArgs& args) -> Expected<Value> {
      if (args.positional.empty() || !args.positional[0].is_string()) {
        return InvalidArgument("dict.get(): the key must be a string");
      }
      if (const Value* v = object.dict().Find(args.positional[0].str())) return *v;
      return args.positional.size() > 1 ? args.positional[1] : Value::None();
    });
  }
  if (name == "items" || name == "keys" || name == "values") {
    return Method(name, [object, name](const CallArgs&) -> Expected<Value> {
      return DictView(object.dict(), name);
    });
  }
  if (name == "dictsort") {
    return Method(name, [object](const CallArgs& args) { return DictSort(object.dict(), args); });
  }
  (void)dict;
  return Value();
}

}  // namespace

Expected<Value> StringReplace(const std::string& s, const CallArgs& args) {
  if (args.positional.size() < 2) return InvalidArgument("replace() requires two arguments");
  const Value& old_v = args.positional[0];
  const Value& new_v = args.positional[1];
  if (!old_v.is_string() || !new_v.is_string()) return InvalidArgument("replace() arguments must be strings");
  const Value* count_v = args.Get(2, "count");
  if (count_v && !count_v->is_int() && !count_v->is_none()) {
    return InvalidArgument("replace() count must be an integer");
  }
  int64_t remaining = (count_v && count_v->is_int() && count_v->int_value() >= 0)
                          ? count_v->int_value()
                          : std::numeric_limits<int64_t>::max();
  const std::string& from = old_v.str();
  const std::string& to = new_v.str();
  std::string out;
  if (from.empty()) {
    // An empty pattern matches before every code point and at the end.
    for (size_t pos = 0; pos <= s.size();) {
      if (remaining > 0) {
        out += to;
        --remaining;
      }
      if (pos == s.size()) break;
      const size_t start = pos;
      DecodeUtf8(s, &pos);
      out.append(s, start, pos - start);
    }
    return Str(std::move(out));
  }
  size_t pos = 0;
  while (remaining > 0) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
    --remaining;
  }
  out.append(s, pos, std::string::npos);
  return Str(std::move(out));
}

Value DictView(const Dict& dict, const std::string& which) {
  std::vector<Value> out;
  out.reserve(dict.entries.size());
  for (const auto& [k, v] : dict.entries) {
    if (which == "keys") out.push_back(Str(k));
    else if (which == "values") out.push_back(v);
    else out.push_back(Value::MakeList({Str(k), v}));
  }
  return Value::MakeList(std::move(out));
}

Expected<Value> GetMember(const Value& object, const Value& key) {
  if (object.is_dict() || object.is_namespace()) {
    if (!key.is_string()) {
      return InvalidArgument(std::string("cannot index a ") + KindName(object.kind()) + " with a " +
                             KindName(key.kind()));
    }
    if (const Value* v = object.dict().Find(key.str())) return *v;
    return object.is_dict() ? DictMember(object, key.str()) : Value();
  }
  if (object.is_list() || object.is_string()) {
    if (key.is_int()) {
      if (object.is_string()) {
        std::string ch;
        return JsCharAt(object.str(), key.int_value(), &ch) ? Str(std::move(ch)) : Value();
      }
      const auto& items = object.list().items;
      int64_t i = key.int_value();
      const int64_t n = static_cast<int64_t>(items.size());
      if (i < 0) i += n;
      return (i >= 0 && i < n) ? items[static_cast<size_t>(i)] : Value();
    }
    if (key.is_string()) {
      if (object.is_string()) return StringMember(object.str(), key.str());
      if (key.str() == "length") return Value::Int(static_cast<int64_t>(object.list().items.size()));
      return Value();
    }
    return InvalidArgument(std::string("cannot index a ") + KindName(object.kind()) + " with a " +
                           KindName(key.kind()));
  }
  if (!key.is_string()) {
    return InvalidArgument(std::string("cannot index a ") + KindName(object.kind()) + " with a " +
                           KindName(key.kind()));
  }
  return Value();  // attributes of undefined, none, numbers, ... are undefined, not errors
}

// ------------------------------------------------------------------------------------ globals

namespace {

Expected<Value> Namespace(const CallArgs& args) {
  if (args.positional.size() > 1) return InvalidArgument("namespace() takes at most 1 positional argument");
  auto dict = std::make_shared<Dict>();
  if (args.positional.size() == 1) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      for (const auto& [k, v] : source.dict().entries) dict->Set(k, v);
    } else if (source.is_list()) {
      for (const Value& pair : source.list().items) {
        if (!pair.is_list() || pair.list().items.size() != 2 || !pair.list().items[0].is_string()) {
          return InvalidArgument("namespace() expects a dict or a list of [key, value] pairs");
        }
        dict->Set(pair.list().items[0].str(), pair.list().items[1]);
      }
    } else {
      return InvalidArgument(std::string("namespace(): a ") + KindName(source.kind()) + " is not iterable");
    }
  }
  for (const auto& [k, v] : args.keyword) dict->Set(k, v);
  return Value::MakeNamespace(std::move(dict));
}

Expected<Value> Range(const CallArgs& args, const CallSite& site) {
  for (const Value& v : args.positional) {
    if (!v.is_int()) return InvalidArgument("range() arguments must be integers");
  }
  if (args.positional.empty() || args.positional.size() > 3) return InvalidArgument("range() takes 1 to 3 arguments");
  int64_t start = 0, stop = 0, step = 1;
  if (args.positional.size() == 1) {
    stop = args.positional[0].int_value();
  } else {
    start = args.positional[0].int_value();
    stop = args.positional[1].int_value();
    if (args.positional.size() == 3) step = args.positional[2].int_value();
  }
  if (step == 0) return InvalidArgument("range() step must not be zero");
  std::vector<Value> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    FG_RETURN_IF_ERROR(site.interpreter->Charge(1));
    out.push_back(Value::Int(i));
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
  return Value::MakeList(std::move(out));
}

// The reference's strftime: %Y %m %d %b %B %H %M %% on local time, other directives verbatim.
Expected<Value> StrftimeNow(const CallArgs& args) {
  if (args.positional.empty() || !args.positional[0].is_string()) {
    return InvalidArgument("strftime_now() expects a format string");
  }
  static const char* const kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                        "July",    "August",   "September", "October", "November", "December"};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  const auto pad2 = [](int v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  const std::string& fmt = args.positional[0].str();
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%' || i + 1 >= fmt.size()) {
      out.push_back(fmt[i]);
      continue;
    }
    const char d = fmt[i + 1];
    switch (d) {
      case 'Y': out += std::to_string(tm.tm_year + 1900); break;
      case 'm': out += pad2(tm.tm_mon + 1); break;
      case 'd': out += pad2(tm.tm_mday); break;
      case 'b': out += std::string(kMonths[tm.tm_mon]).substr(0, 3); break;
      case 'B': out += kMonths[tm.tm_mon]; break;
      case 'H': out += pad2(tm.tm_hour); break;
      case 'M': out += pad2(tm.tm_min); break;
      case '%': out += "%"; break;
      default: out.push_back('%'); out.push_back(d); break;
    }
    ++i;
  }
  return Str(std::move(out));
}

}  // namespace

void InstallGlobals(Env* env) {
  env->Set("namespace", Value::MakeFunction("namespace", [](const CallArgs& a, const CallSite&) {
             return Namespace(a);
           }));
  env->Set("range", Value::MakeFunction("range", Range));
  env->Set("raise_exception",
           Value::MakeFunction("raise_exception", [](const CallArgs& a, const CallSite&) -> Expected<Value> {
             const std::string message = a.positional.empty() ? "" : JsString(a.positional[0]);
             return InvalidArgument("raise_exception: " + message);
           }));
  env->Set("strftime_now", Value::MakeFunction("strftime_now", [](const CallArgs& a, const CallSite&) {
             return StrftimeNow(a);
           }));
  for (const char* name : {"true", "True"}) env->Set(name, Value::Bool(true));
  for (const char* name : {"false", "False"}) env->Set(name, Value::Bool(false));
  for (const char* name : {"none", "None"}) env->Set(name, Value::None());
}

}  // namespace fastgen::jinja
