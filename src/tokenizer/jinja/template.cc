#include "tokenizer/jinja/template.h"

#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace fastgen::jinja {

Expected<Template> Template::Parse(std::string_view source) {
  FG_ASSIGN_OR_RETURN(Tokens tokens, Tokenize(source));
  FG_ASSIGN_OR_RETURN(std::vector<NodePtr> program, jinja::Parse(source, tokens));
  Template t;
  t.source_ = std::string(source);
  t.program_ = std::make_shared<const std::vector<NodePtr>>(std::move(program));
  return t;
}

Expected<std::string> Template::Render(const nlohmann::ordered_json& context,
                                       const RenderLimits& limits) const {
  if (!context.is_object() && !context.is_null()) {
    return InvalidArgument("template context must be a JSON object");
  }
  std::vector<std::pair<std::string, Value>> variables;
  if (context.is_object()) {
    for (auto it = context.begin(); it != context.end(); ++it) {
      variables.emplace_back(it.key(), FromJson(it.value()));
    }
  }
  return Render(variables, limits);
}

Expected<std::string> Template::Render(const std::vector<std::pair<std::string, Value>>& variables,
                                       const RenderLimits& limits) const {
  auto globals = std::make_shared<Env>();
  InstallGlobals(globals.get());
  for (const auto& [name, value] : variables) globals->Set(name, value);
  Interpreter interpreter(source_, limits);
  return interpreter.Run(*program_, globals);
}

}  // namespace fastgen::jinja
