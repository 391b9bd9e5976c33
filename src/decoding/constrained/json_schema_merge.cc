#include "decoding/constrained/json_schema_merge.h"

#include <algorithm>
#include <cctype>

namespace fastgen::constrained::json_schema {

const std::set<std::string>& Annotations() {
  static const std::set<std::string> k = {
      "title",         "description",     "$schema",          "$id",      "$anchor",
      "$comment",      "default",         "examples",         "readOnly", "writeOnly",
      "deprecated",    "contentEncoding", "contentMediaType", "$defs",    "definitions",
      "discriminator",  // OpenAPI's hint next to a oneOf, which the oneOf already enforces
  };
  return k;
}

std::string Where(const std::string& path) {
  return "json schema " + (path.empty() ? std::string("(root)") : path) + ": ";
}

std::string PointerJoin(const std::string& path, std::string_view key) {
  std::string out = path + "/";
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

Expected<const ojson*> ResolveRef(const ojson& doc, const std::string& ref, const std::string& path) {
  if (ref.empty() || ref[0] != '#') {
    return Unsupported(Where(path) + "$ref '" + ref + "': only references within the document (#/...) are supported");
  }
  std::string pointer;  // the fragment, percent-decoded
  for (size_t i = 1; i < ref.size(); ++i) {
    if (ref[i] == '%' && i + 2 < ref.size() && std::isxdigit(static_cast<unsigned char>(ref[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(ref[i + 2]))) {
      pointer += static_cast<char>(std::stoi(ref.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      pointer += ref[i];
    }
  }
  try {
    return &doc.at(ojson::json_pointer(pointer));
  } catch (const std::exception&) {
    return InvalidArgument(Where(path) + "$ref '" + ref + "' does not resolve in this document");
  }
}

Expected<ojson> InlineSchema(const ojson& doc, const ojson& s, const std::string& path, int depth) {
  if (depth > kMaxDepth) return InvalidArgument(Where(path) + "$ref / allOf nested too deeply (a cycle?)");
  if (s.is_boolean()) {
    if (s.get<bool>()) return ojson::object();
    return InvalidArgument(Where(path) + "the schema false allows no value");
  }
  if (!s.is_object()) return InvalidArgument(Where(path) + "a schema must be an object or a boolean");
  ojson acc = s;
  if (acc.contains("allOf")) {
    FG_ASSIGN_OR_RETURN(acc, MergeAllOf(doc, acc, path, depth + 1));
  }
  if (acc.contains("$ref")) {
    if (!acc["$ref"].is_string()) return InvalidArgument(Where(path) + "$ref must be a string");
    FG_ASSIGN_OR_RETURN(const ojson* target, ResolveRef(doc, acc["$ref"].get<std::string>(), path));
    FG_ASSIGN_OR_RETURN(ojson merged, InlineSchema(doc, *target, path, depth + 1));
    acc.erase("$ref");
    FG_RETURN_IF_ERROR(MergeSchemaInto(&merged, acc, path));
    acc = std::move(merged);
  }
  return acc;
}

Expected<ojson> MergeAllOf(const ojson& doc, const ojson& s, const std::string& path, int depth) {
  const ojson& members = s["allOf"];
  if (!members.is_array() || members.empty()) return InvalidArgument(Where(path) + "allOf must be a non-empty array");
  ojson acc = s;
  acc.erase("allOf");
  for (size_t i = 0; i < members.size(); ++i) {
    const std::string where = PointerJoin(PointerJoin(path, "allOf"), std::to_string(i));
    FG_ASSIGN_OR_RETURN(ojson m, InlineSchema(doc, members[i], where, depth + 1));
    FG_RETURN_IF_ERROR(MergeSchemaInto(&acc, m, where));
  }
  return acc;
}

Status MergeSchemaInto(ojson* acc, const ojson& m, const std::string& path) {
  static const std::set<std::string> kTakeMax = {"minimum", "minLength", "minItems", "minProperties"};
  static const std::set<std::string> kTakeMin = {"maximum", "maxLength", "maxItems", "maxProperties"};
  for (const auto& [key, v] : m.items()) {
    if (Annotations().count(key)) continue;
    if (!acc->contains(key)) {
      (*acc)[key] = v;
      continue;
    }
    ojson& a = (*acc)[key];
    if (a == v) continue;
    if (key == "properties" && a.is_object() && v.is_object()) {
      for (const auto& [name, sub] : v.items()) {
        a[name] = a.contains(name) ? ojson{{"allOf", ojson::array({a[name], sub})}} : sub;
      }
    } else if (key == "required" && a.is_array() && v.is_array()) {
      for (const ojson& r : v) {
        if (std::find(a.begin(), a.end(), r) == a.end()) a.push_back(r);
      }
    } else if (key == "type") {
      const ojson x = a.is_array() ? a : ojson::array({a}), y = v.is_array() ? v : ojson::array({v});
      ojson both = ojson::array();
      for (const ojson& t : x) {
        const bool in_y = std::find(y.begin(), y.end(), t) != y.end();
        const bool int_vs_number = t == "integer" && std::find(y.begin(), y.end(), "number") != y.end();
        if (in_y || int_vs_number) both.push_back(t);
      }
      for (const ojson& t : y) {
        if (t == "integer" && std::find(x.begin(), x.end(), "number") != x.end() &&
            std::find(both.begin(), both.end(), t) == both.end()) {
          both.push_back(t);
        }
      }
      if (both.empty()) {
        return InvalidArgument(Where(path) + "allOf: the types " + a.dump() + " and " + v.dump() +
                               " have nothing in common");
      }
      a = both.size() == 1 ? both[0] : both;
    } else if ((kTakeMax.count(key) || kTakeMin.count(key)) && a.is_number() && v.is_number()) {
      const bool larger = v.get<double>() > a.get<double>();
      if (larger == (kTakeMax.count(key) > 0)) a = v;
    } else if ((key == "exclusiveMinimum" || key == "exclusiveMaximum") && a.is_number() && v.is_number()) {
      const bool larger = v.get<double>() > a.get<double>();
      if (larger == (key == "exclusiveMinimum")) a = v;
    } else if (key == "additionalProperties") {
      if (a == false || v == false) {
        a = false;
      } else if (a == true) {
        a = v;
      } else if (v != true) {
        a = ojson{{"allOf", ojson::array({a, v})}};
      }
    } else {
      return Unsupported(Where(path) + "allOf: members set '" + key + "' differently (" + a.dump() + " and " +
                         v.dump() + ")");
    }
  }
  return Status::Ok();
}

}  // namespace fastgen::constrained::json_schema
