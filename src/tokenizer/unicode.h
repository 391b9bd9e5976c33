// UTF-8 and Unicode-property helpers shared by the tokenizer stages. Every stage after input
// sanitation works on valid UTF-8, so the decoding helpers here assume validity and only the
// sanitizer (SanitizeUtf8) looks at arbitrary bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fastgen::tok {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// Length of the UTF-8 sequence introduced by `lead` (1..4), or 0 for a continuation byte or an
// invalid lead byte.
size_t Utf8SequenceLength(uint8_t lead);

// Decodes the code point starting at `s[*pos]` and advances `*pos` past it. `s` must be valid
// UTF-8 at that position.
uint32_t NextCodepoint(std::string_view s, size_t* pos);

void AppendUtf8(uint32_t cp, std::string* out);
std::string CodepointToUtf8(uint32_t cp);

bool IsValidUtf8(std::string_view s);

// Replaces every maximal invalid subsequence with U+FFFD, the policy of Python's
// bytes.decode(errors="replace") and Rust's String::from_utf8_lossy, so text read from bytes
// reaches the tokenizer exactly as Hugging Face would see it.
std::string SanitizeUtf8(std::string_view s);

// Number of bytes at the end of `s` that form an incomplete (but so far valid) UTF-8 sequence.
size_t IncompleteUtf8Suffix(std::string_view s);

// Unicode predicates with Rust's `char` semantics, which is what Hugging Face tokenizers use.
bool IsWhitespace(uint32_t cp);    // White_Space property
bool IsNumeric(uint32_t cp);       // general category N*
bool IsAlphanumeric(uint32_t cp);  // letters, letter-like numbers, marks and N*
bool IsPunctuation(uint32_t cp);   // general category P* or ASCII punctuation

// GPT-2's reversible byte <-> printable code point table used by the ByteLevel stages.
const std::array<std::string, 256>& ByteToUnicode();
// The byte a ByteLevel code point stands for, or -1 when `cp` is not in the table.
int UnicodeToByte(uint32_t cp);

}  // namespace fastgen::tok
