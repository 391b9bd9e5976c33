#include "tokenizer/jinja/interpreter.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/js_string.h"
#include "tokenizer/jinja/lexer.h"

namespace fastgen::jinja {

const Value* Env::Lookup(std::string_view name) const {
  for (const Env* env = this; env != nullptr; env = env->parent_.get()) {
    for (const auto& [k, v] : env->vars_) {
      if (k == name) return &v;
    }
  }
  return nullptr;
}

void Env::Set(std::string name, Value value) {
  for (auto& [k, v] : vars_) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars_.emplace_back(std::move(name), std::move(value));
}

Status Interpreter::Charge(uint64_t n) {
  steps_ += n;
  if (steps_ > limits_.max_steps) {
    return InvalidArgument("template exceeded its evaluation budget (" +
                           std::to_string(limits_.max_steps) + " steps)");
  }
  return Status::Ok();
}

Status Interpreter::CheckSize(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    return InvalidArgument("template output exceeds " + std::to_string(limits_.max_output_bytes) +
                           " bytes");
  }
  return Status::Ok();
}

Status Interpreter::At(const Node& node, const Status& status) const {
  return status.WithContext("template error at " + DescribeOffset(source_, node.offset));
}

Expected<std::string> Interpreter::Run(const std::vector<NodePtr>& program, const EnvPtr& globals) {
  std::string out;
  FG_ASSIGN_OR_RETURN(Flow flow, ExecBlock(program, globals, &out));
  if (flow != Flow::kNormal) return InvalidArgument("'break' or 'continue' outside of a loop");
  return out;
}

Expected<Value> Interpreter::Call(const Value& fn, const CallArgs& args, const EnvPtr& scope) {
  if (!fn.is_function()) {
    return InvalidArgument(std::string("cannot call a value of type ") + KindName(fn.kind()));
  }
  if (depth_ >= limits_.max_depth) return InvalidArgument("template recursion too deep");
  ++depth_;
  Expected<Value> result = fn.function().fn(args, CallSite{this, scope});
  --depth_;
  return result;
}

Status Interpreter::Append(const Value& value, std::string* out) {
  FG_RETURN_IF_ERROR(AppendRendered(value, out));
  return CheckSize(out->size());
}

// ---------------------------------------------------------------------------------- statements

Expected<Interpreter::Flow> Interpreter::ExecBlock(const std::vector<NodePtr>& body,
                                                   const EnvPtr& env, std::string* out) {
  for (const NodePtr& node : body) {
    FG_ASSIGN_OR_RETURN(Flow flow, Exec(*node, env, out));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Expected<std::string> Interpreter::RenderBody(const std::vector<NodePtr>& body, const EnvPtr& env) {
  std::string out;
  FG_ASSIGN_OR_RETURN(Flow flow, ExecBlock(body, env, &out));
  if (flow != Flow::kNormal) return InvalidArgument("'break' or 'continue' outside of a loop");
  return out;
}

Expected<Interpreter::Flow> Interpreter::Exec(const Node& node, const EnvPtr& env, std::string* out) {
  FG_RETURN_IF_ERROR(Charge(1));
  switch (node.kind) {
    case NodeKind::kText:
      out->append(node.text);
      FG_RETURN_IF_ERROR(CheckSize(out->size()));
      return Flow::kNormal;
    case NodeKind::kComment: return Flow::kNormal;
    case NodeKind::kOutput: {
      FG_ASSIGN_OR_RETURN(Value v, Eval(*node.a, env));
      FG_RETURN_IF_ERROR(Append(v, out));
      return Flow::kNormal;
    }
    case NodeKind::kIf: {
      FG_ASSIGN_OR_RETURN(Value cond, Eval(*node.a, env));
      return ExecBlock(Truthy(cond) ? node.body : node.else_body, env, out);
    }
    case NodeKind::kFor: return ExecFor(node, env, out);
    case NodeKind::kSet: FG_RETURN_IF_ERROR(ExecSet(node, env)); return Flow::kNormal;
    case NodeKind::kMacro: FG_RETURN_IF_ERROR(ExecMacro(node, env)); return Flow::kNormal;
    case NodeKind::kCallBlock: {
      FG_ASSIGN_OR_RETURN(Value v, ExecCallBlock(node, env));
      FG_RETURN_IF_ERROR(Append(v, out));
      return Flow::kNormal;
    }
    case NodeKind::kFilterBlock: {
      FG_ASSIGN_OR_RETURN(std::string body, RenderBody(node.body, env));
      const Node& filter = *node.a;
      CallArgs args;
      if (filter.has_args) {
        FG_ASSIGN_OR_RETURN(args, EvalArgs(filter, env));
      }
      Expected<Value> v = ApplyFilter(*this, Value::String(std::move(body)), filter.text,
                                      filter.has_args ? &args : nullptr, env);
      if (!v.ok()) return At(node, v.status());
      FG_RETURN_IF_ERROR(Append(*v, out));
      return Flow::kNormal;
    }
    case NodeKind::kBreak: return Flow::kBreak;
    case NodeKind::kContinue: return Flow::kContinue;
    default: {
      // Expressions do not appear as statements; evaluate defensively all the same.
      FG_ASSIGN_OR_RETURN(Value v, Eval(node, env));
      FG_RETURN_IF_ERROR(Append(v, out));
      return Flow::kNormal;
    }
  }
}

namespace {

// Binds a loop or set target (a name or a tuple of names) to `value`.
Status BindTarget(const Node& target, const Value& value, Env* env) {
  if (target.kind == NodeKind::kIdentifier) {
    env->Set(target.text, value);
    return Status::Ok();
  }
  if (target.kind != NodeKind::kTuple) return InvalidArgument("invalid assignment target");
  if (!value.is_list()) {
    return InvalidArgument(std::string("cannot unpack a value of type ") + KindName(value.kind()));
  }
  const auto& items = value.list().items;
  if (items.size() != target.items.size()) {
    return InvalidArgument(std::string("too ") + (items.size() < target.items.size() ? "few" : "many") +
                           " values to unpack");
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (target.items[i]->kind != NodeKind::kIdentifier) {
      return InvalidArgument("can only unpack into names");
    }
    env->Set(target.items[i]->text, items[i]);
  }
  return Status::Ok();
}

// Whether a macro body reads `name` (kwargs / varargs): only then does the macro accept extra
// keyword / positional arguments, as in Jinja.
bool ReadsName(const Node& node, std::string_view name) {
  if (node.kind == NodeKind::kIdentifier && node.text == name) return true;
  const auto any = [&](const std::vector<NodePtr>& nodes) {
    for (const auto& n : nodes) {
      if (n && ReadsName(*n, name)) return true;
    }
    return false;
  };
  for (const Node* child : {node.a.get(), node.b.get(), node.c.get(), node.d.get()}) {
    if (child && ReadsName(*child, name)) return true;
  }
  if (any(node.items) || any(node.body) || any(node.else_body)) return true;
  for (const auto& [k, v] : node.kwargs) {
    if (v && ReadsName(*v, name)) return true;
  }
  return false;
}

// Whether `value` is or contains the dict `target`. Namespaces are the only mutable containers,
// so refusing `set ns.x = v` when v reaches ns rules out reference cycles (which would leak and
// print forever).
bool Reaches(const Value& value, const Dict* target) {
  std::vector<const Value*> stack{&value};
  std::vector<const void*> seen;
  while (!stack.empty()) {
    const Value* v = stack.back();
    stack.pop_back();
    if (!v->is_list() && !v->is_dict() && !v->is_namespace()) continue;
    if (v->identity() == target) return true;
    if (std::find(seen.begin(), seen.end(), v->identity()) != seen.end()) continue;
    seen.push_back(v->identity());
    if (v->is_list()) {
      for (const Value& item : v->list().items) stack.push_back(&item);
    } else {
      for (const auto& [k, item] : v->dict().entries) stack.push_back(&item);
    }
  }
  return false;
}

}  // namespace

Expected<Interpreter::Flow> Interpreter::ExecFor(const Node& node, const EnvPtr& env, std::string* out) {
  auto scope = std::make_shared<Env>(env);
  FG_ASSIGN_OR_RETURN(Value iterable, Eval(*node.a, scope));
  if (iterable.is_dict()) {
    std::vector<Value> keys;
    for (const auto& [k, v] : iterable.dict().entries) keys.push_back(Value::String(k));
    iterable = Value::MakeList(std::move(keys));
  }
  if (!iterable.is_list()) {
    return At(*node.a, InvalidArgument(std::string("cannot iterate over a value of type ") +
                                       KindName(iterable.kind())));
  }
  // Copy: the body may modify the list it iterates over through a shared reference.
  std::vector<Value> items;
  for (const Value& item : iterable.list().items) {
    FG_RETURN_IF_ERROR(Charge(1));
    if (node.c) {
      auto test_scope = std::make_shared<Env>(scope);
      Status bound = BindTarget(*node.b, item, test_scope.get());
      if (!bound.ok()) return At(node, bound);
      FG_ASSIGN_OR_RETURN(Value keep, Eval(*node.c, test_scope));
      if (!Truthy(keep)) continue;
    }
    items.push_back(item);
  }

  bool no_iteration = true;
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    auto loop = std::make_shared<Dict>();
    loop->Set("index", Value::Int(i + 1));
    loop->Set("index0", Value::Int(i));
    loop->Set("revindex", Value::Int(n - i));
    loop->Set("revindex0", Value::Int(n - i - 1));
    loop->Set("first", Value::Bool(i == 0));
    loop->Set("last", Value::Bool(i == n - 1));
    loop->Set("length", Value::Int(n));
    loop->Set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value());
    loop->Set("nextitem", i < n - 1 ? items[static_cast<size_t>(i + 1)] : Value());
    scope->Set("loop", Value::MakeDict(std::move(loop)));
    Status bound = BindTarget(*node.b, items[static_cast<size_t>(i)], scope.get());
    if (!bound.ok()) return At(node, bound);

    // Like the reference, an iteration ended by break/continue contributes no output, and only
    // iterations that complete normally count against rendering the `else` block.
    const size_t mark = out->size();
    FG_ASSIGN_OR_RETURN(Flow flow, ExecBlock(node.body, scope, out));
    if (flow == Flow::kContinue) {
      out->resize(mark);
      continue;
    }
    if (flow == Flow::kBreak) {
      out->resize(mark);
      break;
    }
    no_iteration = false;
  }
  if (no_iteration) return ExecBlock(node.else_body, scope, out);
  return Flow::kNormal;
}

Status Interpreter::ExecSet(const Node& node, const EnvPtr& env) {
  Value value;
  if (node.b) {
    FG_ASSIGN_OR_RETURN(value, Eval(*node.b, env));
  } else {
    FG_ASSIGN_OR_RETURN(std::string body, RenderBody(node.body, env));
    value = Value::String(std::move(body));
  }
  const Node& target = *node.a;
  if (target.kind == NodeKind::kMember) {
    FG_ASSIGN_OR_RETURN(Value object, Eval(*target.a, env));
    if (!object.is_namespace()) {
      return At(node, InvalidArgument("cannot assign an attribute of a non-namespace object"));
    }
    if (target.computed || target.negate) {
      return At(node, InvalidArgument("namespace attributes are assigned by name"));
    }
    if (Reaches(value, &object.dict())) {
      return At(node, InvalidArgument("a namespace cannot contain itself"));
    }
    object.dict().Set(target.text, std::move(value));
    if (object.dict().depth > kMaxValueDepth) {
      return At(node, InvalidArgument("namespace nested too deeply (or contains itself)"));
    }
    return Status::Ok();
  }
  Status bound = BindTarget(target, value, env.get());
  return bound.ok() ? bound : At(node, bound);
}

Status Interpreter::ExecMacro(const Node& node, const EnvPtr& env) {
  const bool takes_kwargs = ReadsName(node, "kwargs");
  const bool takes_varargs = ReadsName(node, "varargs");
  const Node* macro = &node;  // the tree outlives every value of a render
  env->Set(node.text, Value::MakeFunction(node.text, [macro, takes_kwargs, takes_varargs](
                                                         const CallArgs& args, const CallSite& site)
                                                         -> Expected<Value> {
    Interpreter& self = *site.interpreter;
    auto scope = std::make_shared<Env>(site.scope);
    std::vector<std::pair<std::string, Value>> keyword = args.keyword;
    std::vector<const Param*> pending_defaults;
    for (size_t i = 0; i < macro->params.size(); ++i) {
      const Param& p = macro->params[i];
      Value value;
      bool bound = false;
      if (i < args.positional.size()) {
        value = args.positional[i];
        bound = true;
      } else {
        for (auto it = keyword.begin(); it != keyword.end(); ++it) {
          if (it->first == p.name) {
            value = std::move(it->second);
            keyword.erase(it);
            bound = true;
            break;
          }
        }
      }
      if (!bound && p.default_value) pending_defaults.push_back(&p);
      scope->Set(p.name, std::move(value));
    }
    if (takes_kwargs) {
      auto kw = std::make_shared<Dict>();
      for (auto& [k, v] : keyword) kw->Set(k, v);
      scope->Set("kwargs", Value::MakeDict(std::move(kw)));
    } else if (!keyword.empty()) {
      return InvalidArgument("macro '" + macro->text + "' takes no keyword argument '" +
                             keyword.front().first + "'");
    }
    if (takes_varargs) {
      std::vector<Value> rest;
      for (size_t i = macro->params.size(); i < args.positional.size(); ++i) {
        rest.push_back(args.positional[i]);
      }
      scope->Set("varargs", Value::MakeList(std::move(rest)));
    } else if (args.positional.size() > macro->params.size()) {
      return InvalidArgument("macro '" + macro->text + "' takes at most " +
                             std::to_string(macro->params.size()) + " argument(s)");
    }
    for (const Param* p : pending_defaults) {
      FG_ASSIGN_OR_RETURN(Value v, self.Eval(*p->default_value, scope));
      scope->Set(p->name, std::move(v));
    }
    FG_ASSIGN_OR_RETURN(std::string body, self.RenderBody(macro->body, scope));
    return Value::String(std::move(body));
  }));
  return Status::Ok();
}

Expected<Value> Interpreter::ExecCallBlock(const Node& node, const EnvPtr& env) {
  // `caller()` renders the block body in a child of the call site's scope, binding the block's
  // own parameters (`{% call(item) list(items) %}`).
  const Node* block = &node;
  Value caller = Value::MakeFunction("caller", [block, env](const CallArgs& args,
                                                           const CallSite& site) -> Expected<Value> {
    auto scope = std::make_shared<Env>(env);
    for (size_t i = 0; i < block->params.size(); ++i) {
      const Param& p = block->params[i];
      const Value* v = args.Get(i, p.name);
      if (v != nullptr) {
        scope->Set(p.name, *v);
      } else if (p.default_value) {
        FG_ASSIGN_OR_RETURN(Value d, site.interpreter->Eval(*p.default_value, scope));
        scope->Set(p.name, std::move(d));
      } else {
        scope->Set(p.name, Value());
      }
    }
    FG_ASSIGN_OR_RETURN(std::string body, site.interpreter->RenderBody(block->body, scope));
    return Value::String(std::move(body));
  });
  const Node& call = *node.a;
  FG_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(call, env));
  FG_ASSIGN_OR_RETURN(Value fn, Eval(*call.a, env));
  auto call_env = std::make_shared<Env>(env);
  call_env->Set("caller", std::move(caller));
  Expected<Value> result = Call(fn, args, call_env);
  if (!result.ok()) return At(node, result.status());
  return result;
}

// --------------------------------------------------------------------------------- expressions

Expected<Value> Interpreter::Eval(const Node& node, const EnvPtr& env) {
  FG_RETURN_IF_ERROR(Charge(1));
  if (depth_ >= limits_.max_depth) return At(node, InvalidArgument("template recursion too deep"));
  ++depth_;
  Expected<Value> result = EvalInner(node, env);
  --depth_;
  // Locate an error once, at the innermost expression that produced it.
  if (!result.ok() && result.status().message().rfind("template error at ", 0) != 0) {
    return At(node, result.status());
  }
  return result;
}

Expected<CallArgs> Interpreter::EvalArgs(const Node& node, const EnvPtr& env) {
  CallArgs args;
  for (const NodePtr& item : node.items) {
    FG_ASSIGN_OR_RETURN(Value v, Eval(*item, env));
    args.positional.push_back(std::move(v));
  }
  for (const auto& [key, expr] : node.kwargs) {
    FG_ASSIGN_OR_RETURN(Value v, Eval(*expr, env));
    args.keyword.emplace_back(key, std::move(v));
  }
  return args;
}

Expected<Value> Interpreter::EvalInner(const Node& node, const EnvPtr& env) {
  switch (node.kind) {
    case NodeKind::kLiteral: return node.literal;
    case NodeKind::kIdentifier: {
      const Value* v = env->Lookup(node.text);
      return v ? *v : Value();
    }
    case NodeKind::kList:
    case NodeKind::kTuple: {
      std::vector<Value> items;
      for (const NodePtr& item : node.items) {
        FG_ASSIGN_OR_RETURN(Value v, Eval(*item, env));
        items.push_back(std::move(v));
      }
      Value list = Value::MakeList(std::move(items), node.kind == NodeKind::kTuple);
      if (ValueDepth(list) > kMaxValueDepth) return InvalidArgument("list nested too deeply");
      return list;
    }
    case NodeKind::kDictLiteral: {
      auto dict = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < node.items.size(); i += 2) {
        FG_ASSIGN_OR_RETURN(Value key, Eval(*node.items[i], env));
        if (!key.is_string()) {
          return InvalidArgument(std::string("dict keys must be strings, got ") + KindName(key.kind()));
        }
        FG_ASSIGN_OR_RETURN(Value v, Eval(*node.items[i + 1], env));
        dict->Set(key.str(), std::move(v));
      }
      if (dict->depth > kMaxValueDepth) return InvalidArgument("dict nested too deeply");
      return Value::MakeDict(std::move(dict));
    }
    case NodeKind::kMember: return EvalMember(node, env);
    case NodeKind::kSlice: return EvalSlice(node, env);
    case NodeKind::kCall: {
      FG_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(node, env));
      FG_ASSIGN_OR_RETURN(Value fn, Eval(*node.a, env));
      return Call(fn, args, env);
    }
    case NodeKind::kUnary: {
      FG_ASSIGN_OR_RETURN(Value v, Eval(*node.a, env));
      if (node.text == "not") return Value::Bool(!Truthy(v));
      const bool negate = node.text == "-";
      if (v.is_float()) return Value::Float(negate ? -v.float_value() : v.float_value());
      if (v.is_int() || v.is_bool()) {
        const int64_t i = v.is_bool() ? (v.bool_value() ? 1 : 0) : v.int_value();
        if (negate && i == std::numeric_limits<int64_t>::min()) return InvalidArgument("integer overflow");
        return Value::Int(negate ? -i : i);
      }
      return InvalidArgument("unary '" + node.text + "' on a value of type " + KindName(v.kind()));
    }
    case NodeKind::kBinary: return EvalBinary(node, env);
    case NodeKind::kFilter: {
      FG_ASSIGN_OR_RETURN(Value operand, Eval(*node.a, env));
      if (!node.has_args) return ApplyFilter(*this, operand, node.text, nullptr, env);
      FG_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(node, env));
      return ApplyFilter(*this, operand, node.text, &args, env);
    }
    case NodeKind::kTest: {
      FG_ASSIGN_OR_RETURN(Value operand, Eval(*node.a, env));
      FG_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(node, env));
      FG_ASSIGN_OR_RETURN(bool result, ApplyTest(operand, node.text, args));
      return Value::Bool(node.negate ? !result : result);
    }
    case NodeKind::kTernary: {
      FG_ASSIGN_OR_RETURN(Value cond, Eval(*node.a, env));
      return Eval(Truthy(cond) ? *node.b : *node.c, env);
    }
    case NodeKind::kSelect: {
      FG_ASSIGN_OR_RETURN(Value cond, Eval(*node.b, env));
      if (!Truthy(cond)) return Value();
      return Eval(*node.a, env);
    }
    default: return Internal("statement used as an expression");
  }
}

}  // namespace fastgen::jinja
