// Public entry point of the Jinja engine: parse once, render many times.
//
//   FG_ASSIGN_OR_RETURN(auto tmpl, jinja::Template::Parse(source));
//   FG_ASSIGN_OR_RETURN(std::string text, tmpl.Render(context_json));
//
// Rendering matches @huggingface/jinja (see value.h and builtins.h for what that implies).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/value.h"

namespace fastgen::jinja {

class Template {
 public:
  // Fails with "template syntax error at line L, column C: ..." on malformed input.
  static Expected<Template> Parse(std::string_view source);

  // Renders with the top-level variables of `context` (a JSON object) on top of the globals.
  Expected<std::string> Render(const nlohmann::ordered_json& context,
                               const RenderLimits& limits = RenderLimits()) const;
  // Same with variables given as values, in order (later names override earlier ones).
  Expected<std::string> Render(const std::vector<std::pair<std::string, Value>>& variables,
                               const RenderLimits& limits = RenderLimits()) const;

 private:
  std::string source_;
  std::shared_ptr<const std::vector<NodePtr>> program_;  // shared: templates copy cheaply
};

}  // namespace fastgen::jinja
