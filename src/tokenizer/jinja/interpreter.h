// Evaluator of a parsed template.
//
// Scoping follows @huggingface/jinja: `if` bodies share their scope; a `for` loop gets one child
// scope for all its iterations (a `set` inside a loop is invisible after it, use namespace());
// a macro body runs in a child of its *caller's* scope. Every error is a Status naming the
// template position; user templates cannot crash or hang the process: output size, evaluation
// depth (macro recursion included) and total work are capped by RenderLimits.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace fastgen::jinja {

struct RenderLimits {
  size_t max_output_bytes = 64u << 20;  // also caps every string a template builds
  int max_depth = 400;                  // nested evaluations, macro calls included
  uint64_t max_steps = 50'000'000;      // statements + expressions evaluated + items built
};

class Env {
 public:
  explicit Env(std::shared_ptr<Env> parent = nullptr) : parent_(std::move(parent)) {}

  // The variable's value in this scope or the nearest enclosing one; nullptr when unbound.
  const Value* Lookup(std::string_view name) const;
  void Set(std::string name, Value value);

 private:
  std::shared_ptr<Env> parent_;
  std::vector<std::pair<std::string, Value>> vars_;  // scopes hold a few names: linear lookup
};

using EnvPtr = std::shared_ptr<Env>;

// Adds namespace(), range(), raise_exception(), strftime_now() and the true/false/none constants.
void InstallGlobals(Env* env);

class Interpreter {
 public:
  Interpreter(std::string_view source, RenderLimits limits) : source_(source), limits_(limits) {}

  Expected<std::string> Run(const std::vector<NodePtr>& program, const EnvPtr& globals);

  // Calls a function value (macro, builtin, bound method) with arguments already evaluated.
  Expected<Value> Call(const Value& fn, const CallArgs& args, const EnvPtr& scope);
  // Accounts for `n` units of work; fails once the budget is spent.
  Status Charge(uint64_t n);
  // Fails when a string of `bytes` would exceed the output cap.
  Status CheckSize(size_t bytes) const;
  // Prefixes the template position of `node` to an error.
  Status At(const Node& node, const Status& status) const;

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Expected<Flow> ExecBlock(const std::vector<NodePtr>& body, const EnvPtr& env, std::string* out);
  Expected<Flow> Exec(const Node& node, const EnvPtr& env, std::string* out);
  Expected<Flow> ExecFor(const Node& node, const EnvPtr& env, std::string* out);
  Status ExecSet(const Node& node, const EnvPtr& env);
  Status ExecMacro(const Node& node, const EnvPtr& env);
  Expected<Value> ExecCallBlock(const Node& node, const EnvPtr& env);
  // Renders a body into a fresh string (block set, macro, filter block); break/continue there
  // is an error.
  Expected<std::string> RenderBody(const std::vector<NodePtr>& body, const EnvPtr& env);

  Expected<Value> Eval(const Node& node, const EnvPtr& env);
  Expected<Value> EvalInner(const Node& node, const EnvPtr& env);
  Expected<Value> EvalBinary(const Node& node, const EnvPtr& env);
  Expected<Value> EvalMember(const Node& node, const EnvPtr& env);
  Expected<Value> EvalSlice(const Node& node, const EnvPtr& env);
  Expected<CallArgs> EvalArgs(const Node& node, const EnvPtr& env);
  Status Append(const Value& value, std::string* out);

  std::string_view source_;
  RenderLimits limits_;
  uint64_t steps_ = 0;
  int depth_ = 0;
};

}  // namespace fastgen::jinja
