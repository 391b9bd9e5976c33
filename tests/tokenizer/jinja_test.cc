// Unit tests of the Jinja engine (tokenizer/jinja/), one feature per case.
//
// The expected strings are what @huggingface/jinja 0.5.11 renders for the same template and
// context (checked with scripts/render_chat_templates.mjs when the cases were written), so they
// pin the reference's behavior: booleans print "true", none prints nothing, integral floats keep
// ".0", `strip('\n')` strips all whitespace, a loop iteration ended by break/continue emits
// nothing, and so on. chat_template_test.cc checks the real templates against the live package.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tokenizer/jinja/js_string.h"
#include "tokenizer/jinja/template.h"

namespace fastgen::jinja {
namespace {

Expected<std::string> Render(const std::string& source, const std::string& context_json,
                             const RenderLimits& limits = RenderLimits()) {
  FG_ASSIGN_OR_RETURN(Template t, Template::Parse(source));
  return t.Render(nlohmann::ordered_json::parse(context_json), limits);
}

struct RenderCase {
  const char* name;
  std::string source;
  std::string context;  // JSON object of top-level variables
  std::string expected;
};

class RenderTest : public ::testing::TestWithParam<RenderCase> {};

TEST_P(RenderTest, MatchesReference) {
  const RenderCase& c = GetParam();
  Expected<std::string> got = Render(c.source, c.context);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Features, RenderTest,
    ::testing::Values(
    RenderCase{"ws_trim_blocks", R"J({% if true %}
A
{% endif %}
B
)J",
     R"J({})J",
     R"J(A
B)J"},
    RenderCase{"ws_lstrip", R"J(  {% if true %}x{% endif %}
  {{ 'y' }}
	{# c #}
z)J",
     R"J({})J",
     R"J(x  y
z)J"},
    RenderCase{"ws_dash", R"J(a  {{- 'b' -}}  c
 {%- if true -%} 
 d {%- endif %} e)J",
     R"J({})J",
     R"J(abcd e)J"},
    RenderCase{"ws_comment_dash", R"J(a 
{#- comment -#}
 b)J",
     R"J({})J",
     R"J(ab)J"},
    RenderCase{"ws_trailing_newline", R"J(x

)J",
     R"J({})J",
     R"J(x
)J"},
    RenderCase{"ws_crlf", "{% if true %}\x0d""\nA{% endif %}\x0d""\n  {% if true %}B{% endif %}",
     R"J({})J",
     "\x0d""\nA\x0d""\nB"},
    RenderCase{"generation_tag", R"J(a {% generation %} b {%- endgeneration %} c)J",
     R"J({})J",
     R"J(a  b c)J"},
    RenderCase{"print_values", R"J({{ 1 }}|{{ 1.5 }}|{{ 2.0 }}|{{ -0.0 }}|{{ true }}|{{ none }}|{{ undefined_var }}|{{ 'a' }}|{{ [1, 'b', none, true] }}|{{ {'k': 1, 'j': [1.0]} }})J",
     R"J({})J",
     R"J(1|1.5|2.0|-0.0|true|||a|[1, "b", null, true]|{"k": 1, "j": [1]})J"},
    RenderCase{"print_floats", R"J({{ 0.1 + 0.2 }}|{{ 10.0 ** 21 }}|{{ 2 ** 62 }}|{{ 1 / 3 }}|{{ 100000000000000000000.0 }}|{{ 7 / 2 }}|{{ 6 / 2 }}|{{ 0.000001 }}|{{ 0.0000001 }})J",
     R"J({})J",
     R"J(0.30000000000000004|1e+21|4611686018427388000|0.3333333333333333|100000000000000000000.0|3.5|3.0|0.000001|1e-7)J"},
    RenderCase{"string_escapes", R"J({{ 'a\nb\tc\\d\'e"f' }}|{{ "x\u00e9\x41" }}|{{ 'a' 'b' }})J",
     R"J({})J",
     R"J(a
b	c\d'e"f|xéA|ab)J"},
    RenderCase{"numbers_ctx", R"J({{ a }}|{{ b }}|{{ c }}|{{ a ~ b ~ c }}|{{ b + 1 }})J",
     R"J({"a": 1, "b": 2.5, "c": 3.0})J",
     R"J(1|2.5|3|12.53|3.5)J"},
    RenderCase{"arith", R"J({{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7.5 // 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} {{ 1 + 2 * 3 - 4 }} {{ (1 + 2) * 3 }} {{ -3 }} {{ - 3 }} {{ +4 }} {{ 10 - -2 }})J",
     R"J({})J",
     R"J(3 -4 1 -1 3.0 1024 0.5 64 3 9 -3 -3 4 12)J"},
    RenderCase{"compare", R"J({{ 1 < 2 }}{{ 2 <= 2 }}{{ 3 > 4 }}{{ 1 == 1.0 }}{{ 'a' == 'a' }}{{ 'a' != 'b' }}{{ none == none }}{{ none == undefined_x }}{{ 1 == '1' }}{{ true == 1 }})J",
     R"J({})J",
     R"J(truetruefalsetruetruetruetruetruetruetrue)J"},
    RenderCase{"logic", R"J({{ true and 'x' }}|{{ false or 'y' }}|{{ not [] }}|{{ [] or 'empty' }}|{{ {} and 1 }}|{{ 0 or none }}|{{ not not 'a' }})J",
     R"J({})J",
     R"J(x|y|true|empty|{}||true)J"},
    RenderCase{"in_ops", R"J({{ 'a' in 'cat' }}{{ 'z' not in 'cat' }}{{ 2 in [1, 2] }}{{ 2.0 in [1, 2] }}{{ '1' in [1] }}{{ 'k' in {'k': 1} }}{{ 'x' in undefined_y }}{{ 'x' not in undefined_y }})J",
     R"J({})J",
     R"J(truetruetruetruefalsetruefalsetrue)J"},
    RenderCase{"concat", R"J({{ 'a' ~ 1 ~ 2.0 ~ true ~ [1, 2] }}|{{ 'a' + 1 }}|{{ 1 + 'a' }}|{{ [1] + [2, 3] }}|{{ 'x' + 1.5 }})J",
     R"J({})J",
     R"J(a12true1,2|a1|1a|[1, 2, 3]|x1.5)J"},
    RenderCase{"ternary", R"J({{ 'yes' if 1 else 'no' }}|{{ 'yes' if 0 else 'no' }}|{{ 'a' if false else 'b' if true else 'c' }}|{{ 'x' if false }}.)J",
     R"J({})J",
     R"J(yes|no|b|.)J"},
    RenderCase{"set_scoping", R"J({% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}{% if true %}{% set y = 5 %}{% endif %}|{{ y }})J",
     R"J({})J",
     R"J(24|1|5)J"},
    RenderCase{"namespace", R"J({% set ns = namespace(total=0, items=[]) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}|{{ ns }})J",
     R"J({})J",
     R"J(6|{"total": 6, "items": []})J"},
    RenderCase{"namespace_dict", R"J({% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }})J",
     R"J({})J",
     R"J(121)J"},
    RenderCase{"block_set", R"J({% set body %}Hello {{ name }}!{% endset %}[{{ body }}]{{ body | length }})J",
     R"J({"name": "Bob"})J",
     R"J([Hello Bob!]10)J"},
    RenderCase{"tuple_set", R"J({% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c, d = [3, 4] %}{{ c + d }})J",
     R"J({})J",
     R"J(127)J"},
    RenderCase{"loop_vars", R"J({% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %})J",
     R"J({})J",
     R"J(1032truefalse3b;2121falsefalse3ac;3210falsetrue3b;)J"},
    RenderCase{"loop_else", R"J({% for x in [] %}x{% else %}empty{% endfor %}|{% for x in [1] %}{{ x }}{% else %}no{% endfor %})J",
     R"J({})J",
     R"J(empty|1)J"},
    RenderCase{"loop_filter", R"J({% for x in range(10) if x % 3 == 0 %}{{ x }}{{ loop.index }},{% endfor %})J",
     R"J({})J",
     R"J(01,32,63,94,)J"},
    RenderCase{"loop_dict", R"J({% for k in d %}{{ k }}{% endfor %}|{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}|{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %})J",
     R"J({"d": {"b": 1, "a": 2, "10": 3, "2": 4}})J",
     R"J(210ba|2=4,10=3,b=1,a=2,|24103b1a2)J"},
    RenderCase{"loop_nested", R"J({% for row in [[1, 2], [3]] %}{% for c in row %}{{ loop.index }}{{ c }}{% endfor %}/{{ loop.index }};{% endfor %})J",
     R"J({})J",
     R"J(1122/1;13/2;)J"},
    RenderCase{"loop_break_continue", R"J({% for i in range(6) %}a{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% if i == 3 %}{% break %}{% endif %}{% endfor %})J",
     R"J({})J",
     R"J(a0a2)J"},
    RenderCase{"loop_reverse_slice", R"J({% for m in msgs[::-1] %}{{ m }}{% endfor %}|{{ msgs[1:] }}|{{ msgs[:-1] }}|{{ msgs[::2] }}|{{ msgs[-2:] }}|{{ 'hello'[1:3] }}|{{ 'héllo🦙'[::-1] }})J",
     R"J({"msgs": [1, 2, 3, 4]})J",
     R"J(4321|[2, 3, 4]|[1, 2, 3]|[1, 3]|[3, 4]|el|🦙olléh)J"},
    RenderCase{"range", R"J({{ range(3) }}{{ range(1, 4) }}{{ range(10, 0, -3) }}{{ range(0) }})J",
     R"J({})J",
     R"J([0, 1, 2][1, 2, 3][10, 7, 4, 1][])J"},
    RenderCase{"macro", R"J({% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C') }} {{ greet('D', punct='.') }})J",
     R"J({})J",
     R"J(Hi A! Hi B? Hi C! Hi D.)J"},
    RenderCase{"macro_recursive", R"J({% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n }}*{{ fact(n - 1) }}{% endif %}{% endmacro %}{{ fact(4) }})J",
     R"J({})J",
     R"J(4*3*2*1)J"},
    RenderCase{"macro_kwargs_varargs", R"J({% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }})J",
     R"J({})J",
     R"J(1[2, 3]{"x": 4})J"},
    RenderCase{"call_block", R"J({% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ 1 + 1 }}{% endcall %})J",
     R"J({})J",
     R"J(<b>inner 2</b>)J"},
    RenderCase{"call_block_args", R"J({% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}[{{ x }}]{% endcall %})J",
     R"J({})J",
     R"J([1][2])J"},
    RenderCase{"filter_block", R"J({% filter upper %}hello {{ 'world' }}{% endfilter %})J",
     R"J({})J",
     R"J(HELLO WORLD)J"},
    RenderCase{"f_string", R"J({{ '  a b  ' | trim }}|{{ 'abc' | upper }}|{{ 'ABC' | lower }}|{{ 'hello world-foo_bar élan' | title }}|{{ 'hELLO' | capitalize }}|{{ 'abc' | length }}|{{ '🦙é' | length }})J",
     R"J({})J",
     R"J(a b|ABC|abc|Hello World-Foo_bar éLan|HELLO|3|3)J"},
    RenderCase{"f_tojson", R"J({{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ [] | tojson(indent=2) }}|{{ 'a"<>&\u00e9\n' | tojson }}|{{ 1.0 | tojson }}|{{ none | tojson }}|{{ d | tojson(sort_keys=true) }}|{{ 'é🦙' | tojson(ensure_ascii=true) }}|{{ d | tojson(separators=(',', ':')) }})J",
     R"J({"d": {"b": [1, {"c": null}], "a": true, "Z": "x", "_u": 1.5}})J",
     R"J({"b": [1, {"c": null}], "a": true, "Z": "x", "_u": 1.5}|{
  "b": [
    1,
    {
      "c": null
    }
  ],
  "a": true,
  "Z": "x",
  "_u": 1.5
}|[]|"a\"<>&é\n"|1|null|{"_u": 1.5, "a": true, "b": [1, {"c": null}], "Z": "x"}|"\u00e9\ud83e\udd99"|{"b":[1,{"c":null}],"a":true,"Z":"x","_u":1.5})J"},
    RenderCase{"f_list", R"J({{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}{{ [3, 1, 2] | length }}{{ [3, 1, 2] | reverse }}{{ [3, 1, 2] | sort }}{{ ['b', 'A', 'c'] | sort }}{{ [1, 2] | join }}{{ ['a', 'b'] | join(', ') }}{{ [1, 1, 2, '1'] | unique }}{{ [1, none, 'x'] | join('-') }}{{ [1, 2] | string }})J",
     R"J({})J",
     R"J(323[2, 1, 3][1, 2, 3]["A", "b", "c"]12a, b[1, 2, "1"]1--x[1, 2])J"},
    RenderCase{"f_sort_args", R"J({{ items | sort(attribute='n') | map(attribute='n') | list }}{{ items | sort(attribute='n', reverse=true) | map(attribute='name') | join }}{{ ['b', 'a', 'C'] | sort(case_sensitive=true) }})J",
     R"J({"items": [{"n": 2, "name": "b"}, {"n": 1, "name": "a"}, {"n": 3, "name": "c"}]})J",
     R"J([1, 2, 3]cba["C", "a", "b"])J"},
    RenderCase{"f_selectattr", R"J({{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}|{{ ms | rejectattr('role', 'equalto', 'user') | length }}|{{ ms | selectattr('tool') | length }})J",
     R"J({"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "tool": 1}, {"role": "user", "content": "c"}]})J",
     R"J(a,c|1|1)J"},
    RenderCase{"f_map_default", R"J({{ ms | map(attribute='x', default='d') | list }})J",
     R"J({"ms": [{"x": 1}, {}]})J",
     R"J([1, "d"])J"},
    RenderCase{"f_default", R"J({{ undefined_z | default('dflt') }}|{{ none | default('d2') }}|{{ '' | default('d3', true) }}|{{ 'v' | default('d4') }}|{{ false | default('d5', boolean=true) }})J",
     R"J({})J",
     R"J(dflt||d3|v|d5)J"},
    RenderCase{"f_numbers", R"J({{ -3 | abs }}{{ -2.5 | abs }}{{ 3.7 | int }}{{ -3.7 | int }}{{ '42abc' | int }}{{ 'x' | int }}{{ 'x' | int(7) }}{{ '3.5e2x' | float }}{{ 2 | float }}{{ 3 | string }}{{ 2.0 | string }}{{ true | int }}{{ true | string }})J",
     R"J({})J",
     R"J(32.53-44207350.02.032.01true)J"},
    RenderCase{"f_indent", R"J({{ 'a\nb\n\nc' | indent }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\n\nb' | indent(width=1, blank=true) }})J",
     R"J({})J",
     R"J(a
    b

    c|  a
  b|a
 
 b)J"},
    RenderCase{"f_replace", R"J({{ 'aaa' | replace('a', 'b') }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ 'abc'.replace('b', 'X') }}|{{ 'ab'.replace('', '-') }})J",
     R"J({})J",
     R"J(bbb|bba|aXc|-a-b-)J"},
    RenderCase{"f_items_dictsort", R"J({{ d | items | list }}|{{ d | dictsort }}|{{ d.dictsort(by='value') }}|{{ d | length }})J",
     R"J({"d": {"b": 2, "a": 3, "c": 1}})J",
     R"J([["b", 2], ["a", 3], ["c", 1]]|[["a", 3], ["b", 2], ["c", 1]]|[["c", 1], ["b", 2], ["a", 3]]|3)J"},
    RenderCase{"f_safe", R"J({{ '<b>' | safe }})J",
     R"J({})J",
     R"J(<b>)J"},
    RenderCase{"tests", R"J({{ x is defined }}{{ y is undefined }}{{ none is none }}{{ 'a' is string }}{{ 1 is number }}{{ 1.5 is number }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ {} is iterable }}{{ [] is sequence }}{{ true is boolean }}{{ true is true }}{{ 0 is false }}{{ 3 is odd }}{{ 4 is even }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ x is not none }}{{ x is callable }}{{ range is callable }})J",
     R"J({"x": 1})J",
     R"J(truetruetruetruetruetruetruetruetruefalsetruetruetruefalsetruetruetruetruetruefalsetrue)J"},
    RenderCase{"str_methods", R"J({{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('x', 'lo')) }}{{ '  x  '.strip() }}|{{ '\n\nx\n'.strip('\n') }}|{{ '  x'.lstrip() }}|{{ 'x  '.rstrip() }}|{{ 'a,b,,c'.split(',') }}{{ '  a  b '.split() }}{{ 'a,b,c'.split(',', 1) }}{{ 'abc'.upper() }}{{ 'ABC'.lower() }}{{ 'ab cd'.title() }})J",
     R"J({})J",
     R"J(truetruex|x|x|x|["a", "b", "", "c"]["a", "b"]["a", "b,c"]ABCabcAb Cd)J"},
    RenderCase{"str_index", R"J({{ 'hello'[0] }}{{ 'hello'[-1] }}{{ 'hello'[10] }}.{{ 'abc'.length }}{{ [1, 2].length }})J",
     R"J({})J",
     R"J(ho.32)J"},
    RenderCase{"dict_methods", R"J({{ d.get('a') }}{{ d.get('zz') }}{{ d.get('zz', 'dflt') }}{{ d.keys() }}{{ d.values() }}{{ d.items() }}{{ d['a'] }}{{ d.a }}{{ d.missing }}.)J",
     R"J({"d": {"a": 1, "b": [2]}})J",
     R"J(1dflt["a", "b"][1, [2]][["a", 1], ["b", [2]]]11.)J"},
    RenderCase{"member_chain", R"J({{ m.content.split('</think>')[-1].lstrip('\n') }}|{{ m['role'] }}|{{ m.nothing.deeper }}.)J",
     R"J({"m": {"role": "assistant", "content": "<think>\nx\n</think>\n\nanswer"}})J",
     R"J(answer|assistant|.)J"},
    RenderCase{"list_index", R"J({{ l[0] }}{{ l[-1] }}{{ l[5] }}.{{ l.0 }})J",
     R"J({"l": [1, 2, 3]})J",
     R"J(13.1)J"},
    RenderCase{"unicode_ops", R"J({{ s | upper }}|{{ s | lower }}|{{ s | length }}|{{ s[0] }}|{{ s | trim }}|{{ s.split() }})J",
     "{\"s\": \"\xe3""\x80""\x80"" Stra\xc3""\x9f""e \xc3""\x89""COLE \xf0""\x9f""\xa6""\x99"" \xc2""\xa0""\"}",
     "\xe3""\x80""\x80"" STRASSE \xc3""\x89""COLE \xf0""\x9f""\xa6""\x99"" \xc2""\xa0""|\xe3""\x80""\x80"" stra\xc3""\x9f""e \xc3""\xa9""cole \xf0""\x9f""\xa6""\x99"" \xc2""\xa0""|19|\xe3""\x80""\x80""|Stra\xc3""\x9f""e \xc3""\x89""COLE \xf0""\x9f""\xa6""\x99""|[\"Stra\xc3""\x9f""e\", \"\xc3""\x89""COLE\", \"\xf0""\x9f""\xa6""\x99""\"]"},
    RenderCase{"comments", R"J(a{# comment {{ x }} #}b{#- stripped -#}  c)J",
     R"J({})J",
     R"J(abc)J"},
    RenderCase{"dict_literal", R"J({% set d = {'a': 1, 'b': {'c': [1, 2]}} %}{{ d.b.c[1] }}{{ d }})J",
     R"J({})J",
     R"J(2{"a": 1, "b": {"c": [1, 2]}})J"},
    RenderCase{"is_chains", R"J({{ (x is defined) and (x is not string) }})J",
     R"J({"x": 1})J",
     R"J(true)J"},
    RenderCase{"filter_precedence", R"J({{ -1 | abs }}|{{ [1,2,3] | length - 1 }}|{{ 'a' ~ 'bc' | upper }}|{{ not true | string }})J",
     R"J({})J",
     R"J(1|2|aBC|false)J"},
    RenderCase{"messages_len", R"J({% for message in messages %}{{ loop.index0 }}:{{ message.role }}{% endfor %}{{ messages | length }})J",
     R"J({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})J",
     R"J(0:user1:assistant2)J"},
    // sentinel-free end
    RenderCase{"ends", "", "{}", ""}),
    [](const ::testing::TestParamInfo<RenderCase>& info) { return std::string(info.param.name); });

struct ErrorCase {
  const char* name;
  std::string source;
  std::string context;
  std::string message_part;  // the error must mention this
};

class RenderErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(RenderErrorTest, FailsWithAMessage) {
  const ErrorCase& c = GetParam();
  Expected<std::string> got = Render(c.source, c.context);
  ASSERT_FALSE(got.ok()) << "rendered: " << *got;
  EXPECT_NE(got.status().message().find(c.message_part), std::string::npos) << got.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Errors, RenderErrorTest,
    ::testing::Values(
    ErrorCase{"err_raise", R"J({{ raise_exception('custom failure') }})J", R"J({})J", R"J(raise_exception: custom failure)J"},
    ErrorCase{"err_unknown_filter", R"J({{ 'a' | frobnicate }})J", R"J({})J", R"J(unknown filter 'frobnicate')J"},
    ErrorCase{"err_syntax", R"J({% if %})J", R"J({})J", R"J(line 1, column 7)J"},
    ErrorCase{"err_unclosed", R"J({% for x in y %})J", R"J({})J", R"J(expected {% endfor %})J"},
    ErrorCase{"err_undefined_arith", R"J({{ x + 1 }})J", R"J({})J", R"J(undefined)J"},
    ErrorCase{"err_none_concat", R"J({{ 'a' + none }})J", R"J({})J", R"J(none)J"},
    ErrorCase{"err_call_non_function", R"J({{ x() }})J", R"J({"x": 1})J", R"J(cannot call)J"},
    ErrorCase{"err_default_no_parens", R"J({{ x | default }})J", R"J({})J", R"J(unknown filter 'default')J"},
    ErrorCase{"err_string_lt", R"J({{ 'a' < 'b' }})J", R"J({})J", R"J('<')J"},
    ErrorCase{"err_int_member", R"J({{ {'a': 1}[0] }})J", R"J({})J", R"J(cannot index)J"},
    ErrorCase{"err_for_string", R"J({% for c in 'abc' %}{{ c }}{% endfor %})J", R"J({})J", R"J(cannot iterate)J"},
    ErrorCase{"err_unknown_test", R"J({{ 1 is prime }})J", R"J({})J", R"J(unknown test 'prime')J"},
    ErrorCase{"err_bad_escape", R"J({{ '\q' }})J", R"J({})J", R"J(unknown escape)J"},
    ErrorCase{"err_endfor_stray", R"J({% endfor %})J", R"J({})J", R"J(unknown statement 'endfor')J"},
    ErrorCase{"err_comment_open", R"J({# never closed)J", R"J({})J", R"J(missing end of comment tag)J"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

// ---- behavior beyond the reference's subset (where it fails, fastgen renders like Python Jinja)

TEST(JinjaExtensionTest, PythonJinjaFiltersAndTests) {
  EXPECT_EQ(*Render("{{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 2.1 | round(0, 'ceil') }}", "{}"), "3.0 3.14 3.0");
  EXPECT_EQ(*Render("{{ '<a href=\"x\">&</a>' | escape }}", "{}"), "&lt;a href=&#34;x&#34;&gt;&amp;&lt;/a&gt;");
  EXPECT_EQ(*Render("{{ 6 is divisibleby(3) }}{{ 2 is in([1, 2]) }}{{ 'a' is eq('a') }}", "{}"), "truetruetrue");
  EXPECT_EQ(*Render("{{ ['a', 'b'] | map('upper') | join }}", "{}"), "AB");
}

TEST(JinjaExtensionTest, StrftimeNowFormatsLocalTime) {
  Expected<std::string> got = Render("{{ strftime_now('%Y-%m-%d %B %%') }}", "{}");
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->size(), std::string("2025-01-01 ").size() + got->substr(11).size());
  EXPECT_EQ(got->back(), '%');
  EXPECT_EQ((*got)[4], '-');
}

// ---- errors carry positions; user templates cannot crash or hang the process

TEST(JinjaLimitsTest, SyntaxErrorsNameLineAndColumn) {
  Expected<std::string> got = Render("ok\n  {{ 1 + }}", "{}");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("line 2, column 10"), std::string::npos) << got.status().message();
  got = Render("{% for x in [1] %}\n{{ x | nope }}{% endfor %}", "{}");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("line 2"), std::string::npos) << got.status().message();
}

TEST(JinjaLimitsTest, InfiniteRecursionIsAnError) {
  Expected<std::string> got = Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "{}");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("recursion"), std::string::npos) << got.status().message();
}

TEST(JinjaLimitsTest, OutputSizeIsCapped) {
  RenderLimits limits;
  limits.max_output_bytes = 1000;
  Expected<std::string> got = Render("{% for i in range(100000) %}0123456789{% endfor %}", "{}", limits);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("exceeds"), std::string::npos) << got.status().message();
  // Doubling a string grows past the cap without any output.
  got = Render("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
               "{}", limits);
  EXPECT_FALSE(got.ok());
}

TEST(JinjaLimitsTest, WorkIsBudgeted) {
  RenderLimits limits;
  limits.max_steps = 100000;
  Expected<std::string> got =
      Render("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "{}", limits);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("budget"), std::string::npos) << got.status().message();
}

TEST(JinjaLimitsTest, DeepNestingIsRejectedNotOverflowed) {
  std::string parens = std::string(5000, '(') + "1" + std::string(5000, ')');
  EXPECT_FALSE(Render("{{ " + parens + " }}", "{}").ok());
  std::string chain = "{{ 1";
  for (int i = 0; i < 20000; ++i) chain += " + 1";
  EXPECT_FALSE(Render(chain + " }}", "{}").ok());
  std::string ifs;
  for (int i = 0; i < 2000; ++i) ifs += "{% if true %}";
  EXPECT_FALSE(Render(ifs, "{}").ok());
  // A namespace that contains itself cannot be printed forever.
  EXPECT_FALSE(Render("{% set ns = namespace() %}{% for i in range(400) %}{% set ns.me = ns %}{% endfor %}{{ ns }}",
                      "{}").ok());
}

TEST(JinjaLimitsTest, RandomTemplatesNeverCrash) {
  // Fragments of template syntax glued at random: every outcome must be a value or an error.
  const char* const kPieces[] = {"{{", "}}", "{%", "%}", "{#", "#}", "-", "if", "for", "in", "x", "messages",
                                 "endif", "endfor", "set", "=", "(", ")", "[", "]", "{", "}", "'s'", "\"", "1",
                                 "2.5", "|", "trim", "tojson", "loop", ".", ",", ":", "is", "not", "defined", "~",
                                 "+", "*", "**", "//", "%", "macro", "endmacro", "call", " ", "\n", "\\", "é", "\xff"};
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string source;
    const int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) source += kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
    RenderLimits limits;
    limits.max_steps = 20000;
    limits.max_output_bytes = 1 << 16;
    Expected<std::string> got = Render(source, R"({"x": [1, "a", {"k": null}], "messages": []})", limits);
    (void)got;
  }
}

TEST(JsStringTest, NumberFormattingMatchesJavaScript) {
  EXPECT_EQ(JsNumberToString(0.1), "0.1");
  EXPECT_EQ(JsNumberToString(1e21), "1e+21");
  EXPECT_EQ(JsNumberToString(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(JsNumberToString(1.5e-7), "1.5e-7");
  EXPECT_EQ(JsNumberToString(-2.5), "-2.5");
  EXPECT_EQ(JsNumberToString(-0.0), "0");
  EXPECT_EQ(JsNumberToString(1.0 / 0.0), "Infinity");
}

TEST(JsStringTest, WhitespaceAndLengthsFollowJavaScript) {
  EXPECT_EQ(JsTrim("\xe3\x80\x80 a \xc2\xa0\n"), "a");  // U+3000 and U+00A0 are JS whitespace
  EXPECT_EQ(JsTrim("\xc2\x85x"), "\xc2\x85x");           // U+0085 is not (unlike Python)
  EXPECT_EQ(Utf16Length("a\xf0\x9f\xa6\x99"), 3);        // an astral character is 2 units
  EXPECT_EQ(JsTitle("hello wORLD x1y \xc3\xa9lan"), "Hello WORLD X1y \xc3\xa9Lan");
  std::string out;
  EXPECT_TRUE(JsCharAt("abc", -1, &out));
  EXPECT_EQ(out, "c");
  EXPECT_FALSE(JsCharAt("abc", 3, &out));
  EXPECT_EQ(JsonEnsureAscii("\"\xc3\xa9\xf0\x9f\xa6\x99\""), "\"\\u00e9\\ud83e\\udd99\"");
}

}  // namespace
}  // namespace fastgen::jinja
