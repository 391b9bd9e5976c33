// --stream-weights auto: decided by timing decode steps both ways, cached on disk per CPU,
// thread count and weight footprint, never changing the model's output.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "models/model.h"
#include "models/stream_choice.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(StreamChoice, MeasurementTimesBothModesAndLeavesTheSettingAlone) {
  auto model = LoadModel(SharedPath("models/fg-draft"), &Pool());
  ASSERT_TRUE(model.ok()) << model.status().message();
  (*model)->set_stream_weights(true);
  auto choice = MeasureStreamWeights(**model);
  ASSERT_TRUE(choice.ok()) << choice.status().message();
  EXPECT_EQ(choice->how, "measured");
  EXPECT_GT(choice->stream_ms, 0);
  EXPECT_GT(choice->cached_ms, 0);
  EXPECT_EQ(choice->stream, choice->stream_ms < 0.97 * choice->cached_ms);
  EXPECT_TRUE((*model)->stream_weights());
}

TEST(StreamChoice, SmallModelsDoNotStreamAndLargeOnesAreMeasuredOnceThenCached) {
  const std::string dir = testing::ScratchDir("fastgen_stream_choice") + "/cache";
  std::filesystem::remove_all(dir);
  ScopedEnv cache("FASTGEN_CACHE_DIR", dir);
  {
    ScopedEnv llc("FASTGEN_LLC_BYTES", "1G");
    auto model = LoadModel(SharedPath("models/fg-draft"), &Pool());
    ASSERT_TRUE(model.ok());
    EXPECT_FALSE((*model)->stream_weights());
    EXPECT_NE((*model)->stream_decision().find("fit half the last-level cache"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir + "/stream_weights.tsv"));
  }
  ScopedEnv llc("FASTGEN_LLC_BYTES", "64K");  // fg-draft's matrices now exceed half of it
  auto first = LoadModel(SharedPath("models/fg-draft"), &Pool());
  ASSERT_TRUE(first.ok());
  EXPECT_NE((*first)->stream_decision().find("measured"), std::string::npos) << (*first)->stream_decision();
  ASSERT_TRUE(std::filesystem::exists(dir + "/stream_weights.tsv"));
  auto second = LoadModel(SharedPath("models/fg-draft"), &Pool());
  ASSERT_TRUE(second.ok());
  EXPECT_NE((*second)->stream_decision().find("cached"), std::string::npos) << (*second)->stream_decision();
  EXPECT_EQ((*first)->stream_weights(), (*second)->stream_weights());
  // A damaged cache file is ignored (measured again), never an error.
  std::ofstream(dir + "/stream_weights.tsv") << "garbage\tline\n\x01\x02";
  auto third = LoadModel(SharedPath("models/fg-draft"), &Pool());
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_NE((*third)->stream_decision().find("measured"), std::string::npos);
  // An explicit flag is never second-guessed.
  ModelOptions o;
  o.stream_weights = true;
  auto flagged = LoadModel(SharedPath("models/fg-draft"), &Pool(), o);
  ASSERT_TRUE(flagged.ok());
  EXPECT_TRUE((*flagged)->stream_weights());
}

}  // namespace
}  // namespace fastgen
