#include "server/tool_calls.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "decoding/constrained/json_schema.h"

namespace fastgen::server {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kOpenTag = "<tool_call>", kCloseTag = "</tool_call>";
constexpr const char* kBlank = " \t\r\n";

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// A call's JSON object: {"name": a known tool, "arguments" (or Llama's "parameters"): an object}.
bool ReadCall(std::string_view text, const std::vector<ToolSpec>& tools, ToolCall* out) {
  const ojson j = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  const std::string name = j["name"].get<std::string>();
  if (std::none_of(tools.begin(), tools.end(), [&](const ToolSpec& t) { return t.name == name; })) return false;
  const char* key = j.contains("arguments") ? "arguments" : "parameters";
  if (!j.contains(key) || !j[key].is_object()) return false;
  out->name = name;
  out->arguments = j[key].dump();
  return true;
}

// One past the '}' or ']' closing the JSON object or array that starts at text[at], or npos.
size_t ObjectEnd(const std::string& text, size_t at) {
  if (text[at] != '{' && text[at] != '[') return std::string::npos;
  JsonScan scan;
  for (size_t i = at; i < text.size(); ++i)
    if (scan.Feed(text[i])) return i + 1;
  return std::string::npos;
}

}  // namespace

std::string ToolCallId(ToolCallSyntax syntax) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = syntax == ToolCallSyntax::kMistral ? "" : "call_";
  const size_t n = syntax == ToolCallSyntax::kMistral ? 9 : 20;
  for (size_t i = 0; i < n; ++i) id += syntax == ToolCallSyntax::kMistral ? kAlnum[rng() % 62] : kHex[rng() % 16];
  return id;
}

ToolCallSyntax ToolCallSyntaxOf(const std::string& chat_template) {
  if (chat_template.find("<tool_call>") != std::string::npos) return ToolCallSyntax::kHermes;
  if (chat_template.find("[TOOL_CALLS]") != std::string::npos) return ToolCallSyntax::kMistral;
  if (chat_template.find("\"parameters\": dictionary of argument name") != std::string::npos) return ToolCallSyntax::kLlama31;
  return ToolCallSyntax::kJsonLines;
}

Expected<std::string> ToolCallGbnf(const std::vector<ToolSpec>& tools, const std::string& forced, bool parallel,
                                   ToolCallSyntax syntax) {
  // One schema for "a call to one of the tools": anyOf over {"name": const, "arguments": its
  // parameters}, closed objects (a tool's arguments are exactly its parameters, as strict mode).
  ojson any_of = ojson::array();
  for (const ToolSpec& t : tools) {
    if (!forced.empty() && t.name != forced) continue;
    const char* key = syntax == ToolCallSyntax::kLlama31 ? "parameters" : "arguments";
    ojson call = {{"type", "object"},
                  {"properties", {{"name", {{"const", t.name}}}, {key, t.parameters}}},
                  {"required", {"name", key}},
                  {"additionalProperties", false}};
    any_of.push_back(std::move(call));
  }
  if (any_of.empty()) return InvalidArgument("tool_choice: no tool named '" + forced + "'");
  const ojson schema = any_of.size() == 1 ? any_of[0] : ojson{{"anyOf", any_of}};
  constrained::JsonSchemaOptions opts;
  opts.closed_objects = true;
  auto gbnf = constrained::JsonSchemaToGbnf(schema, opts);
  if (!gbnf.ok()) return gbnf.status().WithContext("tools: a function's parameters");
  std::string out = *gbnf;
  const std::string call = syntax == ToolCallSyntax::kHermes ? "fastgen-tool-call" : "root";
  if (syntax == ToolCallSyntax::kHermes) out += "\nfastgen-tool-call ::= \"<tool_call>\\n\" root \"\\n</tool_call>\"\n";
  if (syntax == ToolCallSyntax::kMistral) {
    out += std::string(kToolCallRoot) + " ::= \"[\" root" + (parallel ? " (\", \" root)*" : "") + " \"]\"\n";
    return out;
  }
  out += std::string(kToolCallRoot) + " ::= " + call + (parallel ? " (\"\\n\" " + call + ")*" : "") + "\n";
  return out;
}

Expected<LazyToolGrammar> ToolCallLazyGbnf(const std::vector<ToolSpec>& tools, ToolCallSyntax syntax) {
  if (syntax != ToolCallSyntax::kHermes) return LazyToolGrammar{};
  // The calls' grammar without its own root line, then the body of one call.
  FG_ASSIGN_OR_RETURN(std::string gbnf, ToolCallGbnf(tools, "", /*parallel=*/false, syntax));
  const size_t root_line = gbnf.rfind(std::string(kToolCallRoot) + " ::=");
  if (root_line == std::string::npos) return Internal("tool-call grammar without its root rule");
  gbnf.resize(root_line);
  gbnf += std::string(kToolCallRoot) + " ::= [ \\n]{0,2} root [ \\n]{0,2} \"</tool_call>\"\n";
  return LazyToolGrammar{std::move(gbnf), std::string(kOpenTag)};
}

ParsedAnswer ParseToolCalls(const std::string& text, ToolCallSyntax syntax, const std::vector<ToolSpec>& tools) {
  ParsedAnswer out;
  if (syntax == ToolCallSyntax::kHermes) {
    static constexpr std::string_view kOpen = "<tool_call>", kClose = "</tool_call>";
    std::string rest;
    size_t at = 0;
    while (true) {
      const size_t open = text.find(kOpen, at);
      const size_t close = open == std::string::npos ? std::string::npos : text.find(kClose, open + kOpen.size());
      if (close == std::string::npos) {
        rest += text.substr(at);
        break;
      }
      ToolCall call;
      const size_t inner = open + kOpen.size();
      if (ReadCall(std::string_view(text).substr(inner, close - inner), tools, &call)) {
        rest += text.substr(at, open - at);
        out.calls.push_back(std::move(call));
      } else {  // not a call to a known tool: it stays text
        rest += text.substr(at, close + kClose.size() - at);
      }
      at = close + kClose.size();
    }
    out.content = Trim(rest);
    return out;
  }
  if (syntax == ToolCallSyntax::kMistral) {
    // [TOOL_CALLS] (or the answer's start) and an array of calls; text before it is content.
    static constexpr std::string_view kMarker = "[TOOL_CALLS]";
    const size_t marker = text.find(kMarker);
    const size_t from = marker == std::string::npos ? 0 : marker + kMarker.size();
    const size_t at = text.find_first_not_of(" \t\r\n", from);
    const size_t end = at == std::string::npos ? at : ObjectEnd(text, at);
    if (end != std::string::npos && text[at] == '[') {
      const ojson array = ojson::parse(std::string_view(text).substr(at, end - at), nullptr, false);
      std::vector<ToolCall> calls;
      bool all = array.is_array() && !array.empty();
      for (size_t i = 0; all && i < array.size(); ++i) {
        ToolCall call;
        all = ReadCall(array[i].dump(), tools, &call);
        calls.push_back(std::move(call));
      }
      if (all) {
        out.calls = std::move(calls);
        out.content = Trim(text.substr(0, marker == std::string::npos ? 0 : marker) + text.substr(end));
        return out;
      }
    }
    out.content = Trim(text);
    return out;
  }
  // Bare JSON: the whole answer must be call objects (one per line as the grammar writes them,
  // each possibly spread over lines) or it is text.
  std::vector<ToolCall> calls;
  size_t at = 0;
  bool all = true;
  while (true) {
    at = text.find_first_not_of(" \t\r\n", at);
    if (at == std::string::npos) break;
    const size_t end = ObjectEnd(text, at);
    ToolCall call;
    if (end == std::string::npos || !ReadCall(std::string_view(text).substr(at, end - at), tools, &call)) {
      all = false;
      break;
    }
    calls.push_back(std::move(call));
    at = end;
  }
  if (all && !calls.empty()) {
    out.calls = std::move(calls);
  } else {
    out.content = Trim(text);
  }
  return out;
}

}  // namespace fastgen::server

namespace fastgen::server {
namespace {


enum class Head { kNeedMore, kNo, kYes };

// Reads `{"name": "NAME", "arguments": ` (or "parameters") at s[at]: the name, and where the
// arguments' object begins. kNeedMore while the text so far could still be that.
Head ReadHead(const std::string& s, size_t at, std::string* name, size_t* value_at) {
  size_t i = at;
  const auto blank = [&] {
    while (i < s.size() && std::strchr(kBlank, s[i]) != nullptr && s[i] != '\0') ++i;
  };
  const auto literal = [&](std::string_view l) {
    for (char c : l) {
      if (i >= s.size()) return Head::kNeedMore;
      if (s[i] != c) return Head::kNo;
      ++i;
    }
    return Head::kYes;
  };
  const auto string = [&](std::string* out) {  // a JSON string without escapes
    if (Head h = literal("\""); h != Head::kYes) return h;
    while (true) {
      if (i >= s.size()) return Head::kNeedMore;
      const char c = s[i++];
      if (c == '"') return Head::kYes;
      if (c == '\\' || static_cast<unsigned char>(c) < 0x20) return Head::kNo;
      out->push_back(c);
    }
  };
  Head h;
  std::string key;
  name->clear();
  if ((h = literal("{")) != Head::kYes) return h;
  blank();
  if ((h = literal("\"name\"")) != Head::kYes) return h;
  blank();
  if ((h = literal(":")) != Head::kYes) return h;
  blank();
  if ((h = string(name)) != Head::kYes) return h;
  blank();
  if ((h = literal(",")) != Head::kYes) return h;
  blank();
  if ((h = string(&key)) != Head::kYes) return h;
  if (key != "arguments" && key != "parameters") return Head::kNo;
  blank();
  if ((h = literal(":")) != Head::kYes) return h;
  blank();
  if (i >= s.size()) return Head::kNeedMore;
  if (s[i] != '{') return Head::kNo;
  *value_at = i;
  return Head::kYes;
}

}  // namespace

bool ToolCallStream::KnownTool(const std::string& name) const {
  return std::any_of(tools_.begin(), tools_.end(), [&](const ToolSpec& t) { return t.name == name; });
}

void ToolCallStream::Content(std::string_view t, std::vector<ToolStreamDelta>* out) {
  // As ParseToolCalls trims the answer's text: leading blanks are dropped and trailing ones wait
  // for more text to follow them.
  const size_t last = t.find_last_not_of(kBlank);
  if (last == std::string_view::npos) {
    if (content_started_) pending_ws_ += t;
    return;
  }
  std::string piece;
  size_t first = 0;
  if (!content_started_) {
    first = t.find_first_not_of(kBlank);
    content_started_ = true;
  } else {
    piece = std::move(pending_ws_);
  }
  piece += t.substr(first, last + 1 - first);
  pending_ws_ = std::string(t.substr(last + 1));
  out->push_back({ToolStreamDelta::Kind::kContent, -1, std::move(piece)});
}

void ToolCallStream::ContentUpTo(std::string_view tag, std::vector<ToolStreamDelta>* out) {
  // Everything from pos_ but a tail that could begin `tag`.
  size_t keep = 0;
  for (size_t k = std::min(tag.size() - 1, text_.size() - pos_); k > 0 && keep == 0; --k)
    if (text_.compare(text_.size() - k, k, tag.substr(0, k)) == 0) keep = k;
  Content(std::string_view(text_).substr(pos_, text_.size() - keep - pos_), out);
  pos_ = text_.size() - keep;
}

bool ToolCallStream::Step(std::vector<ToolStreamDelta>* out) {
  const bool hermes = syntax_ == ToolCallSyntax::kHermes;
  switch (state_) {
    case State::kPlain:
      Content(std::string_view(text_).substr(pos_), out);
      pos_ = text_.size();
      return false;
    case State::kText: {
      if (mistral()) {
        // [TOOL_CALLS] opens the calls; without it (skipped as a special token) an answer that
        // begins with '[' may be them.
        static constexpr std::string_view kMarker = "[TOOL_CALLS]";
        const size_t marker = text_.find(kMarker, pos_);
        if (marker != std::string::npos) {
          Content(std::string_view(text_).substr(pos_, marker - pos_), out);
          call_start_ = marker;
          pos_ = marker + kMarker.size();
          state_ = State::kArrayOpen;
          return true;
        }
        if (!content_started_ && calls_ == 0) {
          const size_t at = text_.find_first_not_of(kBlank, pos_);
          if (at == std::string::npos) return false;
          if (text_[at] == '[') {
            const size_t have = text_.size() - at;
            if (have < kMarker.size() && text_.compare(at, have, kMarker.substr(0, have)) == 0) return false;
            call_start_ = pos_ = at;
            state_ = State::kArrayOpen;
            return true;
          }
        }
        ContentUpTo(kMarker, out);
        return false;
      }
      if (!hermes) {  // bare JSON: the answer is calls when it begins with '{'
        const size_t at = text_.find_first_not_of(kBlank, pos_);
        if (at == std::string::npos) return false;
        state_ = text_[at] == '{' ? State::kCallStart : State::kPlain;
        call_start_ = at;
        return true;
      }
      const size_t open = text_.find(kOpenTag, pos_);
      if (open == std::string::npos) {
        ContentUpTo(kOpenTag, out);
        return false;
      }
      Content(std::string_view(text_).substr(pos_, open - pos_), out);
      call_start_ = open;
      pos_ = open + kOpenTag.size();
      state_ = State::kCallStart;
      return true;
    }
    case State::kArrayOpen: {
      const size_t at = text_.find_first_not_of(kBlank, pos_);
      if (at == std::string::npos) return false;
      if (text_[at] != '[') {
        pos_ = call_start_;  // [TOOL_CALLS] without an array: text
        state_ = State::kPlain;
        return true;
      }
      pos_ = at + 1;
      first_in_array_ = true;
      state_ = State::kCallStart;
      return true;
    }
    case State::kCallStart: {
      const size_t at = text_.find_first_not_of(kBlank, pos_);
      if (at == std::string::npos) return false;
      if (mistral()) {
        if (!first_in_array_ && text_[at] == ',') {
          pos_ = at + 1;
          first_in_array_ = true;
          return true;
        }
        if (text_[at] == ']') {  // the array's end: what follows is text
          pos_ = at + 1;
          state_ = State::kText;
          return true;
        }
        if (text_[at] != '{') {
          pos_ = calls_ == 0 ? call_start_ : at;
          state_ = State::kPlain;
          return true;
        }
      }
      if (text_[at] != '{') {
        if (hermes) {
          state_ = State::kWholeCall;  // not a call: it stays text once its tag closes
        } else {
          pos_ = at;
          state_ = State::kPlain;  // text after calls (a stream cannot take the calls back)
        }
        return true;
      }
      object_ = at;
      if (!hermes && !mistral()) call_start_ = at;
      std::string name;
      size_t value_at = 0;
      const Head h = ReadHead(text_, at, &name, &value_at);
      if (h == Head::kNeedMore) return false;
      if (h == Head::kNo || !KnownTool(name)) {
        state_ = State::kWholeCall;
        return true;
      }
      out->push_back({ToolStreamDelta::Kind::kCallHeader, calls_++, name});
      pos_ = value_at;
      scan_ = JsonScan{};
      state_ = State::kArguments;
      return true;
    }
    case State::kArguments:
    case State::kCallTail: {
      // The arguments' object, sent as it comes; then the rest of the call's object, silently.
      const bool arguments = state_ == State::kArguments;
      size_t i = pos_;
      bool closed = false;
      while (i < text_.size() && !closed) closed = scan_.Feed(text_[i++]);
      if (arguments && i > pos_) out->push_back({ToolStreamDelta::Kind::kArguments, calls_ - 1, text_.substr(pos_, i - pos_)});
      pos_ = i;
      if (!closed) return false;
      if (arguments) {
        scan_.depth = 1;  // inside the call's object
        state_ = State::kCallTail;
      } else {
        state_ = hermes ? State::kCloseTag : State::kCallStart;
        first_in_array_ = false;
      }
      return true;
    }
    case State::kCloseTag: {
      const size_t close = text_.find(kCloseTag, pos_);
      if (close == std::string::npos) return false;
      pos_ = close + kCloseTag.size();
      state_ = State::kText;
      return true;
    }
    case State::kWholeCall: {
      // Held until it is whole, then a call if ParseToolCalls would take it, else text.
      size_t end, inner, inner_end;
      if (hermes) {
        const size_t close = text_.find(kCloseTag, call_start_ + kOpenTag.size());
        if (close == std::string::npos) return false;
        inner = call_start_ + kOpenTag.size();
        inner_end = close;
        end = close + kCloseTag.size();
      } else {
        end = ObjectEnd(text_, object_);
        if (end == std::string::npos) return false;
        inner = object_;
        inner_end = end;
      }
      ToolCall call;
      if (ReadCall(std::string_view(text_).substr(inner, inner_end - inner), tools_, &call)) {
        out->push_back({ToolStreamDelta::Kind::kCallHeader, calls_, call.name});
        out->push_back({ToolStreamDelta::Kind::kArguments, calls_++, call.arguments});
        pos_ = end;
        state_ = hermes ? State::kText : State::kCallStart;
        first_in_array_ = false;
      } else if (hermes) {
        Content(std::string_view(text_).substr(call_start_, end - call_start_), out);
        pos_ = end;
        state_ = State::kText;
      } else {
        pos_ = mistral() && calls_ == 0 ? call_start_ : object_;
        state_ = State::kPlain;
      }
      return true;
    }
  }
  return false;
}

std::vector<ToolStreamDelta> ToolCallStream::Feed(std::string_view text) {
  text_ += text;
  std::vector<ToolStreamDelta> out;
  while (Step(&out)) {
  }
  return out;
}

std::vector<ToolStreamDelta> ToolCallStream::Finish() {
  std::vector<ToolStreamDelta> out;
  while (Step(&out)) {
  }
  switch (state_) {
    case State::kText:  // a held "<tool_call" prefix that never became one
      Content(std::string_view(text_).substr(pos_), &out);
      break;
    case State::kArrayOpen:
    case State::kCallStart:
    case State::kWholeCall:  // an unfinished call that was never sent: text
      Content(std::string_view(text_).substr(hermes() || (mistral() && calls_ == 0) ? call_start_ : pos_), &out);
      break;
    default:  // a call cut short (the token budget): its pieces are out
      break;
  }
  pos_ = text_.size();
  state_ = State::kPlain;
  return out;
}

}  // namespace fastgen::server
