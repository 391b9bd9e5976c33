// Binary operators, attribute/subscript access and slices of the interpreter. The operand rules
// are @huggingface/jinja's: `+` adds numbers, concatenates lists, and concatenates strings when
// either side is a string; `~` stringifies both sides; comparisons other than ==/!= take numbers
// only; any arithmetic on undefined or none is an error (except `x in undefined`, false).
#include <cmath>
#include <limits>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/js_string.h"

namespace fastgen::jinja {
namespace {

Status UnknownOperator(const std::string& op, const Value& a, const Value& b) {
  return InvalidArgument("unsupported operand types for '" + op + "': " + KindName(a.kind()) +
                         " and " + KindName(b.kind()));
}

Expected<Value> IntArithmetic(const std::string& op, int64_t a, int64_t b) {
  int64_t r = 0;
  bool overflow = false;
  if (op == "+") overflow = __builtin_add_overflow(a, b, &r);
  if (op == "-") overflow = __builtin_sub_overflow(a, b, &r);
  if (op == "*") overflow = __builtin_mul_overflow(a, b, &r);
  if (op == "//" || op == "%") {
    // The reference yields Infinity/NaN here; an error is more useful than printing "NaN".
    if (b == 0) return InvalidArgument("integer division or modulo by zero");
    if (a == std::numeric_limits<int64_t>::min() && b == -1) return InvalidArgument("integer overflow");
    if (op == "%") return Value::Int(a % b);  // JS remainder: the sign of the dividend
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;  // floor, like Math.floor(a / b)
    return Value::Int(q);
  }
  if (overflow) return InvalidArgument("integer overflow in '" + op + "'");
  return Value::Int(r);
}

Expected<Value> Power(const Value& left, const Value& right) {
  const auto num = [](const Value& v) {
    return v.is_bool() ? (v.bool_value() ? 1.0 : 0.0) : v.number();
  };
  const double a = num(left), b = num(right);
  if (a == 0 && b < 0) return InvalidArgument("0.0 cannot be raised to a negative power");
  const bool is_float = left.is_float() || right.is_float() || b < 0;
  if (!is_float) {
    // Exact integer power by squaring, refusing overflow instead of drifting into doubles.
    int64_t base = left.is_bool() ? (left.bool_value() ? 1 : 0) : left.int_value();
    int64_t exp = right.is_bool() ? (right.bool_value() ? 1 : 0) : right.int_value();
    int64_t result = 1;
    while (exp > 0) {
      if ((exp & 1) && __builtin_mul_overflow(result, base, &result)) {
        return InvalidArgument("integer overflow in '**'");
      }
      exp >>= 1;
      if (exp > 0 && __builtin_mul_overflow(base, base, &base)) {
        return InvalidArgument("integer overflow in '**'");
      }
    }
    return Value::Int(result);
  }
  const double r = std::pow(a, b);
  if (!std::isfinite(r)) return InvalidArgument("exponentiation result is not a finite real number");
  return Value::Float(r);
}

}  // namespace

Expected<Value> Interpreter::EvalBinary(const Node& node, const EnvPtr& env) {
  const std::string& op = node.text;
  FG_ASSIGN_OR_RETURN(Value left, Eval(*node.a, env));
  if (op == "and") return Truthy(left) ? Eval(*node.b, env) : Expected<Value>(left);
  if (op == "or") return Truthy(left) ? Expected<Value>(left) : Eval(*node.b, env);
  FG_ASSIGN_OR_RETURN(Value right, Eval(*node.b, env));
  if (op == "==") return Value::Bool(LooseEquals(left, right));
  if (op == "!=") return Value::Bool(!LooseEquals(left, right));

  const bool is_in = op == "in" || op == "not in";
  if (left.is_undefined() || right.is_undefined()) {
    if (right.is_undefined() && is_in) return Value::Bool(op == "not in");
    return InvalidArgument("cannot apply '" + op + "' to an undefined value");
  }
  if (left.is_none() || right.is_none()) return InvalidArgument("cannot apply '" + op + "' to none");
  if (op == "~") {
    std::string s = JsString(left) + JsString(right);
    FG_RETURN_IF_ERROR(CheckSize(s.size()));
    return Value::String(std::move(s));
  }
  const auto numeric_like = [](const Value& v) { return v.is_number() || v.is_bool(); };
  if (op == "**" && numeric_like(left) && numeric_like(right)) return Power(left, right);

  if (left.is_number() && right.is_number()) {
    if (op == "<") return Value::Bool(left.number() < right.number());
    if (op == ">") return Value::Bool(left.number() > right.number());
    if (op == "<=") return Value::Bool(left.number() <= right.number());
    if (op == ">=") return Value::Bool(left.number() >= right.number());
    if (op == "/") return Value::Float(left.number() / right.number());
    const bool arithmetic = op == "+" || op == "-" || op == "*" || op == "//" || op == "%";
    if (arithmetic && left.is_int() && right.is_int()) {
      return IntArithmetic(op, left.int_value(), right.int_value());
    }
    const double a = left.number(), b = right.number();
    if (op == "+") return Value::Float(a + b);
    if (op == "-") return Value::Float(a - b);
    if (op == "*") return Value::Float(a * b);
    if (op == "//") return Value::Float(std::floor(a / b));
    if (op == "%") return Value::Float(std::fmod(a, b));
  } else if (left.is_list() && right.is_list()) {
    if (op == "+") {
      std::vector<Value> items = left.list().items;
      FG_RETURN_IF_ERROR(Charge(items.size() + right.list().items.size()));
      items.insert(items.end(), right.list().items.begin(), right.list().items.end());
      return Value::MakeList(std::move(items));
    }
  } else if (right.is_list() && is_in) {
    bool found = false;
    for (const Value& item : right.list().items) {
      if (StrictEquals(item, left)) {
        found = true;
        break;
      }
    }
    return Value::Bool(found == (op == "in"));
  }

  if ((left.is_string() || right.is_string()) && op == "+") {
    std::string s = JsString(left) + JsString(right);
    FG_RETURN_IF_ERROR(CheckSize(s.size()));
    return Value::String(std::move(s));
  }
  if (left.is_string() && right.is_string() && is_in) {
    const bool found = right.str().find(left.str()) != std::string::npos;
    return Value::Bool(found == (op == "in"));
  }
  if (left.is_string() && right.is_dict() && is_in) {
    const bool found = right.dict().Find(left.str()) != nullptr;
    return Value::Bool(found == (op == "in"));
  }
  return UnknownOperator(op, left, right);
}

Expected<Value> Interpreter::EvalMember(const Node& node, const EnvPtr& env) {
  FG_ASSIGN_OR_RETURN(Value object, Eval(*node.a, env));
  Value key;
  if (node.computed) {
    FG_ASSIGN_OR_RETURN(key, Eval(*node.b, env));
  } else if (node.negate) {  // `x.0`
    key = Value::Int(std::strtoll(node.text.c_str(), nullptr, 10));
  } else {
    key = Value::String(node.text);
  }
  return GetMember(object, key);
}

namespace {

// Python slice semantics as the reference implements them (utils.ts slice()).
std::vector<size_t> SliceIndices(int64_t length, const Value& start_v, const Value& stop_v,
                                 const Value& step_v) {
  const int64_t step = step_v.is_undefined() ? 1 : step_v.int_value();
  const int direction = step > 0 ? 1 : step < 0 ? -1 : 0;
  int64_t start = 0, stop = 0;
  if (direction >= 0) {
    start = start_v.is_undefined() ? 0 : start_v.int_value();
    start = start < 0 ? std::max<int64_t>(length + start, 0) : std::min(start, length);
    stop = stop_v.is_undefined() ? length : stop_v.int_value();
    stop = stop < 0 ? std::max<int64_t>(length + stop, 0) : std::min(stop, length);
  } else {
    start = start_v.is_undefined() ? length - 1 : start_v.int_value();
    start = start < 0 ? std::max<int64_t>(length + start, -1) : std::min(start, length - 1);
    stop = stop_v.is_undefined() ? -1 : stop_v.int_value();
    stop = stop < -1 ? std::max<int64_t>(length + stop, -1) : std::min(stop, length - 1);
  }
  std::vector<size_t> out;
  if (direction == 0) return out;
  for (int64_t i = start; direction * i < direction * stop; i += step) {
    out.push_back(static_cast<size_t>(i));
  }
  return out;
}

}  // namespace

Expected<Value> Interpreter::EvalSlice(const Node& node, const EnvPtr& env) {
  FG_ASSIGN_OR_RETURN(Value object, Eval(*node.a, env));
  if (!object.is_list() && !object.is_string()) {
    return InvalidArgument(std::string("cannot slice a value of type ") + KindName(object.kind()));
  }
  Value parts[3];
  const Node* exprs[3] = {node.b.get(), node.c.get(), node.d.get()};
  for (int i = 0; i < 3; ++i) {
    if (exprs[i] == nullptr) continue;
    FG_ASSIGN_OR_RETURN(parts[i], Eval(*exprs[i], env));
    if (!parts[i].is_int() && !parts[i].is_undefined()) {
      return InvalidArgument("slice indices must be integers");
    }
  }
  if (object.is_list()) {
    const auto& items = object.list().items;
    const auto idx = SliceIndices(static_cast<int64_t>(items.size()), parts[0], parts[1], parts[2]);
    FG_RETURN_IF_ERROR(Charge(idx.size()));
    std::vector<Value> out;
    out.reserve(idx.size());
    for (size_t i : idx) out.push_back(items[i]);
    return Value::MakeList(std::move(out));
  }
  const std::vector<char32_t> cps = ToCodePoints(object.str());
  const auto idx = SliceIndices(static_cast<int64_t>(cps.size()), parts[0], parts[1], parts[2]);
  FG_RETURN_IF_ERROR(Charge(idx.size()));
  std::string out;
  for (size_t i : idx) AppendUtf8(cps[i], &out);
  return Value::String(std::move(out));
}

}  // namespace fastgen::jinja
