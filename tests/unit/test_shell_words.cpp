// SPDX-License-Identifier: MIT
// exec = "PROG ARGS": words split the way a POSIX shell would, with no shell running.
#include "common/config/shell_words.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace forkd {
namespace {

using Words = std::vector<std::string>;

TEST(SplitShellWords, Blanks) {
    EXPECT_EQ(split_shell_words("/bin/cat -n"), (Words{"/bin/cat", "-n"}));
    EXPECT_EQ(split_shell_words("  a \t b\n c  "), (Words{"a", "b", "c"}));
    EXPECT_EQ(split_shell_words(""), Words{});
    EXPECT_EQ(split_shell_words("   "), Words{});
}

TEST(SplitShellWords, SingleQuotesAreLiteral) {
    EXPECT_EQ(split_shell_words("/bin/sh -c 'echo hi there'"), (Words{"/bin/sh", "-c", "echo hi there"}));
    EXPECT_EQ(split_shell_words(R"('a\b' '$HOME' '"x"')"), (Words{R"(a\b)", "$HOME", R"("x")"}));
}

TEST(SplitShellWords, DoubleQuotesEscapeOnlyFiveCharacters) {
    EXPECT_EQ(split_shell_words(R"("a \"b\" \\ \$ \`")"), (Words{R"(a "b" \ $ `)"}));
    EXPECT_EQ(split_shell_words(R"("\n\x")"), (Words{R"(\n\x)"}));  // other backslashes stay
    EXPECT_EQ(split_shell_words("\"a\\\nb\""), (Words{"ab"}));     // backslash-newline joins
    EXPECT_EQ(split_shell_words(R"("it's")"), (Words{"it's"}));
}

TEST(SplitShellWords, BackslashOutsideQuotes) {
    EXPECT_EQ(split_shell_words(R"(a\ b c\\d \'e)"), (Words{"a b", R"(c\d)", "'e"}));
    EXPECT_EQ(split_shell_words("a\\\nb"), (Words{"ab"}));
}

TEST(SplitShellWords, QuotesJoinAdjacentPieces) {
    EXPECT_EQ(split_shell_words(R"(ab'cd'"ef"g)"), (Words{"abcdefg"}));
    EXPECT_EQ(split_shell_words(R"('it'\''s')"), (Words{"it's"}));
}

TEST(SplitShellWords, EmptyQuotesMakeEmptyWords) {
    EXPECT_EQ(split_shell_words(R"(a '' "" b)"), (Words{"a", "", "", "b"}));
}

TEST(SplitShellWords, NoExpansionNoOperators) {
    EXPECT_EQ(split_shell_words("echo $HOME * ~ a|b ;x"), (Words{"echo", "$HOME", "*", "~", "a|b", ";x"}));
}

TEST(SplitShellWords, Errors) {
    auto reason = [](std::string_view text) {
        try {
            split_shell_words(text);
        } catch (const std::invalid_argument& error) {
            return std::string(error.what());
        }
        return std::string("(accepted)");
    };
    EXPECT_EQ(reason("'abc"), "unterminated single quote");
    EXPECT_EQ(reason("a \"b c"), "unterminated double quote");
    EXPECT_EQ(reason(R"("a\")"), "unterminated double quote");
    EXPECT_EQ(reason("abc\\"), "trailing backslash");
}

TEST(QuoteShellWord, BareWhenSafe) {
    EXPECT_EQ(quote_shell_word("/usr/bin/env"), "/usr/bin/env");
    EXPECT_EQ(quote_shell_word("--opt=v,1"), "--opt=v,1");
    EXPECT_EQ(quote_shell_word(""), "''");
    EXPECT_EQ(quote_shell_word("a b"), "'a b'");
    EXPECT_EQ(quote_shell_word("it's"), R"('it'\''s')");
}

TEST(QuoteShellWord, JoinRoundTrips) {
    const std::vector<Words> cases = {
        {"/bin/sh", "-c", "echo \"$1\" 'x' \\ #"},
        {"/bin/printf", "%s\n", "", "tab\there", "it's", "*"},
        {"/x", "a\"b", "`cmd`", "$(x)", "~"},
    };
    for (const auto& words : cases) EXPECT_EQ(split_shell_words(join_shell_words(words)), words);
}

} // namespace
} // namespace forkd
