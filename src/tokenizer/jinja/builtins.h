// Filters, tests, attribute access and the methods of strings and dicts.
//
// The set and the behavior are @huggingface/jinja's, quirks included where a chat template can
// observe them (`strip('\n')` strips all whitespace because the reference ignores the argument;
// `x | default` without parentheses is an error; `round` does not exist there). A few filters and
// tests that Python Jinja has and the reference lacks (round, escape, tests with arguments) are
// provided as an extension: where the reference fails, fastgen renders like Python Jinja.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/value.h"

namespace fastgen::jinja {

// `object.name` / `object[key]`: dict entries, then methods (items, get, upper, split, ...);
// list and string indices (negative from the end); undefined when absent.
Expected<Value> GetMember(const Value& object, const Value& key);

// `operand | name` (`args` is nullptr) or `operand | name(args)`.
Expected<Value> ApplyFilter(Interpreter& interp, const Value& operand, const std::string& name,
                            const CallArgs* args, const EnvPtr& env);

// `operand is name` / `operand is name(args)`.
Expected<bool> ApplyTest(const Value& operand, const std::string& name, const CallArgs& args);

// Shared helpers of filters and methods.
struct SortOptions {
  bool reverse = false;
  bool case_sensitive = false;
  std::string attribute;  // dotted path ("a.b", "0") to sort by; empty: the items themselves
};
// Stable sort as the reference's `sort` filter: numbers with numbers, strings with strings
// (case-insensitive by default); mixing kinds is an error.
Expected<Value> SortValues(std::vector<Value> items, const SortOptions& options);
// `item.a.b` / `item.0` for sort(attribute=...) and map(attribute=...); undefined when absent.
Value GetAttributePath(const Value& item, const std::string& path);
// str.replace(old, new[, count]).
Expected<Value> StringReplace(const std::string& s, const CallArgs& args);
// dict.items() / keys() / values() as lists.
Value DictView(const Dict& dict, const std::string& which);

}  // namespace fastgen::jinja
