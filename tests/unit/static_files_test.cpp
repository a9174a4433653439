// The console's static files: only files present at load can be named, whatever the path says.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "gateway/static_files.hpp"

using namespace sbm::gateway;
namespace fs = std::filesystem;

namespace {

struct StaticFiles : ::testing::Test {
  fs::path root;
  fs::path dir;

  void SetUp() override {
    char pattern[] = "/tmp/sbm-static-XXXXXX";
    root = ::mkdtemp(pattern);
    dir = root / "console";
    fs::create_directories(dir / "assets");
    write(dir / "index.html", "<!doctype html><title>c</title>");
    write(dir / "assets" / "index-abc123.js", "console.log(1)");
    write(dir / "assets" / "index-abc123.css", "body{}");
    write(dir / "assets" / "a b.svg", "<svg/>");
    // Beside the directory, where a climbing path would land.
    write(root / "secret.txt", "not for the web");
  }
  void TearDown() override { fs::remove_all(root); }

  static void write(const fs::path& p, const std::string& text) {
    std::ofstream{p, std::ios::binary} << text;
  }
  std::shared_ptr<const static_files> load() { return static_files::load(dir, "/console"); }
};

}  // namespace

TEST_F(StaticFiles, ServesIndexForTheMountAndFilesByPath) {
  auto files = load();
  EXPECT_EQ(files->size(), 4u);
  for (const char* path : {"/console", "/console/", "/console/index.html"}) {
    auto found = files->lookup("GET", path);
    ASSERT_EQ(found.kind, static_lookup::found) << path;
    EXPECT_EQ(found.file->body, "<!doctype html><title>c</title>");
    EXPECT_EQ(found.file->content_type, "text/html; charset=utf-8");
    EXPECT_EQ(found.file->cache_control, "no-cache");
    EXPECT_TRUE(found.file->html);
  }
  auto js = files->lookup("HEAD", "/console/assets/index-abc123.js");
  ASSERT_EQ(js.kind, static_lookup::found);
  EXPECT_EQ(js.file->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(js.file->cache_control, "public, max-age=31536000, immutable");
  EXPECT_FALSE(js.file->html);
  EXPECT_EQ(files->lookup("GET", "/console/assets/index-abc123.css").file->content_type,
            "text/css; charset=utf-8");
  auto svg = files->lookup("GET", "/console/assets/a%20b.svg");
  ASSERT_EQ(svg.kind, static_lookup::found);
  EXPECT_EQ(svg.file->content_type, "image/svg+xml");
}

TEST_F(StaticFiles, PathsOutsideTheMountAreNotItsBusiness) {
  auto files = load();
  EXPECT_EQ(files->lookup("GET", "/v1/speakers").kind, static_lookup::outside);
  EXPECT_EQ(files->lookup("GET", "/consoles").kind, static_lookup::outside);
  EXPECT_EQ(files->lookup("GET", "/").kind, static_lookup::outside);
}

TEST_F(StaticFiles, NoPathClimbsOutOfTheDirectory) {
  auto files = load();
  for (const char* path :
       {"/console/../secret.txt", "/console/%2e%2e/secret.txt", "/console/assets/../../secret.txt",
        "/console/..%2Fsecret.txt", "/console/..%5csecret.txt", "/console/./index.html",
        "/console//index.html", "/console/assets/", "/console/%00", "/console/%zz",
        "/console/missing.js", "/console/assets%2Findex-abc123.js"})
    EXPECT_EQ(files->lookup("GET", path).kind, static_lookup::missing) << path;
}

TEST_F(StaticFiles, OnlyGetAndHead) {
  auto files = load();
  EXPECT_EQ(files->lookup("POST", "/console/").kind, static_lookup::bad_method);
  EXPECT_EQ(files->lookup("DELETE", "/console/index.html").kind, static_lookup::bad_method);
}

TEST_F(StaticFiles, SymbolicLinksAreNotFollowed) {
  fs::create_symlink(root / "secret.txt", dir / "link.txt");
  fs::create_directory_symlink(root, dir / "up");
  auto files = load();
  EXPECT_EQ(files->lookup("GET", "/console/link.txt").kind, static_lookup::missing);
  EXPECT_EQ(files->lookup("GET", "/console/up/secret.txt").kind, static_lookup::missing);
  EXPECT_EQ(files->size(), 4u);
}

TEST_F(StaticFiles, RefusesADirectoryThatIsNotAConsole) {
  EXPECT_THROW(static_files::load(root / "nowhere", "/console"), std::runtime_error);
  fs::remove(dir / "index.html");
  EXPECT_THROW(load(), std::runtime_error);
}

TEST_F(StaticFiles, EverythingHeldInMemoryIsBounded) {
  // The four files hold 31 + 14 + 6 + 6 = 57 bytes.
  EXPECT_EQ(load()->bytes(), 57u);
  EXPECT_NO_THROW(static_files::load(dir, "/console", {57, 4}));
  try {
    static_files::load(dir, "/console", {56, 4});
    ADD_FAILURE() << "57 bytes loaded under a limit of 56";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string{e.what()}.find("more than 56 bytes"), std::string::npos) << e.what();
  }
  try {
    static_files::load(dir, "/console", {57, 3});
    ADD_FAILURE() << "4 files loaded under a limit of 3";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string{e.what()}.find("more than 3 files"), std::string::npos) << e.what();
  }
}

TEST(ContentTypes, ByExtension) {
  EXPECT_EQ(content_type_of("x.woff2"), "font/woff2");
  EXPECT_EQ(content_type_of("x.png"), "image/png");
  EXPECT_EQ(content_type_of("x.unknown"), "application/octet-stream");
  EXPECT_EQ(content_type_of("html"), "application/octet-stream");
}
