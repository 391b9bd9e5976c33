// Folding JSON Schema's combinators into one schema, for the converter in json_schema.cc: a $ref
// next to other keywords, allOf, and the keywords next to an anyOf (which apply to every branch)
// all become "this schema AND that one", which is written as one merged schema.
//
// The merge: properties united (a property in both gets allOf of the two), required united, types
// intersected, the stricter of two bounds kept, additionalProperties false if either says so;
// any other keyword must have the same value in both (else kUnsupported). This is the intended
// meaning for the object schemas allOf is written for; it is looser than JSON Schema in one
// corner: additionalProperties in one member does not see the properties another declares.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fastgen::constrained::json_schema {

using ojson = nlohmann::ordered_json;

inline constexpr int kMaxDepth = 128;  // nested subschemas (and chains of $refs) followed at once

// Keywords that describe and never constrain; ignored.
const std::set<std::string>& Annotations();
// "json schema /properties/a: " (or "(root)"), the prefix of every error.
std::string Where(const std::string& path);
// `path` + "/" + `key` as a JSON pointer (~ and / escaped).
std::string PointerJoin(const std::string& path, std::string_view key);

// The subschema a "#..." reference names in `doc` (a JSON pointer, percent-decoded).
Expected<const ojson*> ResolveRef(const ojson& doc, const std::string& ref, const std::string& path);
// `s` with any $ref and allOf at its top folded in (true becomes {}).
Expected<ojson> InlineSchema(const ojson& doc, const ojson& s, const std::string& path, int depth);
// `s` (which has allOf) with its members merged into it.
Expected<ojson> MergeAllOf(const ojson& doc, const ojson& s, const std::string& path, int depth);
// *acc := *acc AND m, for m without $ref / allOf at its top.
Status MergeSchemaInto(ojson* acc, const ojson& m, const std::string& path);

}  // namespace fastgen::constrained::json_schema
