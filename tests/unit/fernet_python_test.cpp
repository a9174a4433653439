// Interoperability with Python's cryptography.fernet (Debian's python3-cryptography): the other
// tools that read QA notes use it, so each side must read what the other wrote.
#include "actors/reports/core/fernet.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace {

namespace fs = std::filesystem;
using sbm::reports::fernet;

// Debian's interpreter on purpose: the python3 on PATH may lack Debian's modules.
constexpr const char* python = "/usr/bin/python3";

// Data only ever travels through files named in argv, so no plaintext or token meets a shell.
constexpr const char* script = R"PY(
import sys
from cryptography.fernet import Fernet, InvalidToken

mode = sys.argv[1]
if mode == "genkey":
    sys.stdout.write(Fernet.generate_key().decode())
    sys.exit(0)
f = Fernet(open(sys.argv[2], "rb").read())
ttl = None if sys.argv[3] == "-" else int(sys.argv[3])
pairs = sys.argv[4:]
for source, target in zip(pairs[0::2], pairs[1::2]):
    data = open(source, "rb").read()
    if mode == "encrypt":
        out = f.encrypt(data)
    else:
        try:
            out = f.decrypt(data, ttl=ttl)
        except InvalidToken:
            continue  # no output file: the C++ side sees the refusal
    open(target, "wb").write(out)
)PY";

struct run_result {
  int exit_code = -1;
  std::string output;
};

run_result run(const std::string& command) {
  run_result result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::optional<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> sample_plaintexts() {
  std::string large(100'000, '\0');
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>((i * 37 + 11) & 0xFF);
  return {
      "",
      "hello",
      std::string(16, 'b'),
      "QA note: \"metoprolal\" should read metoprolol; speaker mumbles at 02:14 — vérifier 胸痛",
      std::string("nul\0bytes\0", 10),
      "'; DROP TABLE error_reports; --",
      large,
  };
}

class FernetPython : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run(std::string(python) + " -c 'import cryptography.fernet' >/dev/null 2>&1").exit_code != 0) {
      FAIL() << python << " cannot import cryptography.fernet: scripts/install-deps installs python3-cryptography";
    }
    char dir_template[] = "/tmp/sbm_fernet_py_XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    write_file(dir_ / "fernet_tool.py", script);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Runs the script over pairs of (input file, output file) named "<prefix>_in_<i>" / "<prefix>_out_<i>".
  int python_batch(const std::string& mode, const std::string& key, const std::string& ttl,
                   const std::vector<std::string>& inputs, const std::string& prefix) {
    write_file(dir_ / (prefix + "_key"), key);
    std::string command = std::string(python) + " " + quoted(dir_ / "fernet_tool.py") + " " + mode + " " +
                          quoted(dir_ / (prefix + "_key")) + " " + ttl;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      write_file(in_path(prefix, i), inputs[i]);
      command += " " + quoted(in_path(prefix, i)) + " " + quoted(out_path(prefix, i));
    }
    return run(command + " 2>&1").exit_code;
  }
  fs::path in_path(const std::string& prefix, std::size_t i) const {
    return dir_ / (prefix + "_in_" + std::to_string(i));
  }
  fs::path out_path(const std::string& prefix, std::size_t i) const {
    return dir_ / (prefix + "_out_" + std::to_string(i));
  }

  fs::path dir_;
};

TEST_F(FernetPython, PythonDecryptsWhatSbmEncrypted) {
  const std::string key = fernet::generate_key();
  const fernet f = *fernet::from_key(key);
  const auto plaintexts = sample_plaintexts();
  std::vector<std::string> tokens;
  for (const auto& plain : plaintexts) tokens.push_back(f.encrypt(plain, std::time(nullptr)));

  ASSERT_EQ(python_batch("decrypt", key, "3600", tokens, "sbm"), 0);
  for (std::size_t i = 0; i < plaintexts.size(); ++i) {
    const auto decrypted = read_file(out_path("sbm", i));
    ASSERT_TRUE(decrypted.has_value()) << "Python refused token " << i;
    EXPECT_EQ(*decrypted, plaintexts[i]) << i;
  }
}

TEST_F(FernetPython, PythonRefusesWhatSbmSignedWithAnotherKeyOrTooLongAgo) {
  // Shows the Python side really verifies, so the acceptances above mean something.
  const std::string key = fernet::generate_key();
  const fernet other = *fernet::from_key(fernet::generate_key());
  const fernet f = *fernet::from_key(key);
  const std::vector<std::string> tokens = {other.encrypt("x", std::time(nullptr)),
                                           f.encrypt("x", std::time(nullptr) - 7200)};
  ASSERT_EQ(python_batch("decrypt", key, "3600", tokens, "bad"), 0);
  EXPECT_FALSE(read_file(out_path("bad", 0)).has_value());
  EXPECT_FALSE(read_file(out_path("bad", 1)).has_value());
}

TEST_F(FernetPython, SbmDecryptsWhatPythonEncrypted) {
  const std::string key = fernet::generate_key();
  const fernet f = *fernet::from_key(key);
  const auto plaintexts = sample_plaintexts();
  ASSERT_EQ(python_batch("encrypt", key, "-", plaintexts, "py"), 0);
  for (std::size_t i = 0; i < plaintexts.size(); ++i) {
    const auto token = read_file(out_path("py", i));
    ASSERT_TRUE(token.has_value()) << i;
    const auto decrypted = f.decrypt(*token, std::time(nullptr), 3600);
    ASSERT_TRUE(decrypted.has_value()) << "SBM refused Python's token " << i << ": " << *token;
    EXPECT_EQ(*decrypted, plaintexts[i]) << i;
  }
}

TEST_F(FernetPython, KeysFromEitherSideWork) {
  const run_result python_key = run(std::string(python) + " " + quoted(dir_ / "fernet_tool.py") + " genkey");
  ASSERT_EQ(python_key.exit_code, 0);
  const auto from_python = fernet::from_key(python_key.output);
  ASSERT_TRUE(from_python.has_value()) << python_key.output;
  const std::string token = from_python->encrypt("with Python's key", std::time(nullptr));
  ASSERT_EQ(python_batch("decrypt", python_key.output, "-", {token}, "pk"), 0);
  EXPECT_EQ(read_file(out_path("pk", 0)).value_or("<refused>"), "with Python's key");
}

}  // namespace
