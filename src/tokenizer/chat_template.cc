#include "tokenizer/chat_template.h"

#include <filesystem>

#include "core/mapped_file.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "tokenizer/jinja/template.h"

namespace fastgen {

Expected<std::string> RenderChatTemplate(std::string_view template_source, const ChatTemplateInputs& in) {
  FG_ASSIGN_OR_RETURN(jinja::Template tmpl, jinja::Template::Parse(template_source));
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (const ChatMessage& m : in.messages) {
    nlohmann::ordered_json msg = {{"role", m.role}, {"content", m.content}};
    if (m.extra.is_object()) {
      for (auto it = m.extra.begin(); it != m.extra.end(); ++it) msg[it.key()] = it.value();
    }
    messages.push_back(std::move(msg));
  }
  nlohmann::ordered_json context = {
      {"messages", std::move(messages)},
      {"add_generation_prompt", in.add_generation_prompt},
      {"bos_token", in.bos_token},
      {"eos_token", in.eos_token},
  };
  if (in.extra_context.is_object()) {
    for (auto it = in.extra_context.begin(); it != in.extra_context.end(); ++it) {
      context[it.key()] = it.value();
    }
  } else if (!in.extra_context.is_null()) {
    return InvalidArgument("chat template extra_context must be a JSON object");
  }
  Expected<std::string> out = tmpl.Render(context);
  if (!out.ok()) return out.status().WithContext("rendering chat template");
  return out;
}

namespace {

Expected<std::string> ReadFile(const std::filesystem::path& path) {
  return ReadTextFile(path.string(), kTemplateFileLimit);
}

// The "chat_template" value of a tokenizer_config.json / chat_template.json: a string, or a list
// of {"name", "template"} from which "default" is chosen.
Expected<std::string> TemplateFromConfig(const std::filesystem::path& path) {
  FG_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path.string(), kConfigFileLimit));
  const nlohmann::json config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) return CorruptFile(path.string() + ": not a JSON object");
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return NotFound(path.string() + " has no chat_template");
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::string names;
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
          !entry["name"].is_string() || !entry["template"].is_string()) {
        return CorruptFile(path.string() + ": chat_template list entries must be {name, template} strings");
      }
      if (entry["name"] == "default") return entry["template"].get<std::string>();
      names += (names.empty() ? "" : ", ") + entry["name"].get<std::string>();
    }
    return NotFound(path.string() + ": no chat_template named \"default\" (have: " + names + ")");
  }
  return CorruptFile(path.string() + ": chat_template must be a string or a list");
}

}  // namespace

namespace {

Expected<std::string> FindChatTemplate(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path path(model_path);
  if (fs::is_directory(path, ec)) {
    // transformers >= 4.43 saves the template as its own file, which then takes precedence.
    if (fs::exists(path / "chat_template.jinja", ec)) return ReadFile(path / "chat_template.jinja");
    if (fs::exists(path / "tokenizer_config.json", ec)) {
      Expected<std::string> t = TemplateFromConfig(path / "tokenizer_config.json");
      if (t.ok() || t.status().code() != ErrorCode::kNotFound || !fs::exists(path / "chat_template.json", ec)) {
        return t;
      }
    }
    if (fs::exists(path / "chat_template.json", ec)) return TemplateFromConfig(path / "chat_template.json");
    return NotFound(model_path + ": no chat_template.jinja, tokenizer_config.json or chat_template.json");
  }
  if (!fs::exists(path, ec)) return NotFound(model_path + ": no such file or directory");
  if (path.extension() == ".gguf" || IsGgufPath(model_path)) {
    FG_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::Open(model_path));
    FG_ASSIGN_OR_RETURN(std::optional<std::string> t, gguf.GetString("tokenizer.chat_template"));
    if (!t) return NotFound(model_path + ": GGUF metadata has no tokenizer.chat_template");
    return *t;
  }
  if (path.extension() == ".jinja") return ReadFile(path);
  return TemplateFromConfig(path);
}

}  // namespace

Expected<std::string> LoadChatTemplate(const std::string& model_path) {
  FG_ASSIGN_OR_RETURN(std::string tmpl, FindChatTemplate(model_path));
  // An empty template renders every conversation to nothing: there is no prompt to run.
  if (tmpl.find_first_not_of(" \t\r\n") == std::string::npos)
    return CorruptFile(model_path + ": the chat template is empty");
  return tmpl;
}

}  // namespace fastgen
