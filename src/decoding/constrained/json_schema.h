// JSON Schema -> GBNF, for structured output (response_format json_schema, tool arguments) and
// the `--json` flag. The grammar's `root` matches the JSON text of the values the schema allows,
// as a model should write them; it follows llama.cpp's json-schema-to-grammar where that is
// sensible.
//
// Supported keywords (others that constrain values are refused with kUnsupported, naming the
// keyword and the JSON pointer of its subschema; annotations are ignored: title, description,
// $schema, $id, $anchor, $comment, default, examples, readOnly, writeOnly, deprecated,
// contentEncoding, contentMediaType):
//   type (one or a list), enum, const (values written compactly, as nlohmann dumps them);
//   string: minLength, maxLength, pattern, format (date, time, date-time, uuid, email, ipv4;
//     other formats are annotations, as JSON Schema 2019-09 and later read them, and ignored);
//   integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers, or draft 4's
//     booleans), exactly: every integer in range and no other, without leading zeros;
//   number: the same bounds, exactly for bounds with an integer value; a bound with a fraction
//     is rounded inward to an integer (minimum 0.5 allows 1, 1.5, ... but not 0.7), which keeps
//     every generated number valid. A bounded number is written without an exponent;
//   object: properties, required, additionalProperties (false, true or a schema);
//     minProperties / maxProperties only for objects without `properties`;
//   array: items (a schema, or draft 7's list = prefixItems), prefixItems, additionalItems,
//     minItems, maxItems, uniqueItems false;
//   anyOf, oneOf (as anyOf: exclusivity is not enforced), allOf (merged into one schema:
//     properties and required united, the stricter bound kept, other keywords must agree);
//     next to other keywords, anyOf / oneOf distribute them into every branch;
//   $ref to any JSON pointer in the document ("#", "#/$defs/X", "#/definitions/X", ...), one
//     rule per target, so recursive schemas work. A cycle of refs that matches no text first
//     (a: {anyOf: [{$ref: a}, ...]}) is left recursion: Grammar::Parse refuses the grammar,
//     naming the rule.
// Without `type`, the type follows from the keywords present ({"properties": ...} is an object),
// and a schema with none of them allows any JSON value.
//
// Objects: the declared properties in declaration order, required ones always and optional ones
// each optional, then (when additionalProperties allows) any number of other keys, which may not
// repeat a declared name. Declaration order needs nlohmann::ordered_json (or the text overload):
// nlohmann::json sorts keys alphabetically.
//
// `pattern`: JSON Schema reads it unanchored (it matches anywhere in the string), but schemas
// written for generation nearly always mean the whole string, and an unanchored "[a-z]+" would
// let the model write anything that contains a letter. By default it is therefore the whole
// string (as Outlines and XGrammar read it; ^ and $ are accepted and change nothing);
// JsonSchemaOptions::pattern_anchoring = kSearch gives the specification's reading.
//
// Lengths count characters as JSON Schema does, with one exception: a character outside the BMP
// written as a \uD83D\uDE00 escape pair counts as two.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"
#include "decoding/constrained/regex_to_gbnf.h"

namespace fastgen::constrained {

struct JsonSchemaOptions {
  // false: optional whitespace, [ \t\n]{0,20}, after every token, as models write pretty-printed
  // JSON; bounded so that a model cannot loop on whitespace forever. true: none at all.
  bool compact = false;
  // JSON Schema lets an object without "additionalProperties" have any other keys. true closes
  // such objects (llama.cpp's reading), which keeps a model from inventing keys.
  bool closed_objects = false;
  RegexAnchoring pattern_anchoring = RegexAnchoring::kWholeString;
  // Largest maxLength / maxItems / {m,n} count and largest grammar: each count becomes that many
  // copies in the compiled grammar.
  int64_t max_repetition = 10000;
  size_t max_grammar_bytes = size_t{1} << 20;
};

Expected<std::string> JsonSchemaToGbnf(const nlohmann::ordered_json& schema, const JsonSchemaOptions& opts = {});
// Keys in alphabetical order (what nlohmann::json keeps).
Expected<std::string> JsonSchemaToGbnf(const nlohmann::json& schema, const JsonSchemaOptions& opts = {});
// Parses the schema text itself, keeping its key order; errors name a syntax error's position.
Expected<std::string> JsonSchemaTextToGbnf(std::string_view schema_text, const JsonSchemaOptions& opts = {});

// Any JSON value (`--json`), and any JSON object (response_format json_object).
std::string JsonValueGbnf(const JsonSchemaOptions& opts = {});
std::string JsonObjectGbnf(const JsonSchemaOptions& opts = {});

}  // namespace fastgen::constrained
