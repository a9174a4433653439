// Snapshot files of the pattern index. Two files, because hnswlib 0.6 saves its graph only to a
// path of its own: `<path>.hnsw` (hnswlib's format) and `<path>` (ours: parameters, every live
// pattern with its slot, the graph file's size and hash, and a trailing hash of itself). The graph
// is renamed into place first, so a crash between the renames leaves a metadata file whose
// recorded graph hash no longer matches, which load refuses. Byte order is the machine's: a
// snapshot is a cache for the node that wrote it, not an exchange format.
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

#include "actors/patterns/core/pattern_index.hpp"
#include "actors/patterns/core/pattern_index_impl.hpp"

namespace sbm::patterns {

namespace {

constexpr char magic[8] = {'S', 'B', 'M', 'P', 'A', 'T', 'X', '1'};
constexpr std::uint32_t format_version = 1;
constexpr std::uint8_t overlapping_bit = 1;
constexpr std::uint8_t specialized_bit = 2;

// Integrity, not secrecy: detects truncation, bit rot and a half-finished save.
class hasher {
 public:
  void add(const char* data, std::size_t size) {
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      std::uint64_t word;
      std::memcpy(&word, data + i, 8);
      mix(word);
    }
    for (; i < size; ++i) mix(static_cast<unsigned char>(data[i]) | 0x100u);
    length_ += size;
  }
  std::uint64_t value() const {
    std::uint64_t h = state_ ^ length_;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
  }

 private:
  void mix(std::uint64_t word) {
    state_ ^= word;
    state_ *= 0x9e3779b97f4a7c15ULL;
    state_ ^= state_ >> 29;
  }
  std::uint64_t state_ = 0x243f6a8885a308d3ULL;
  std::uint64_t length_ = 0;
};

// Hashed in blocks that are multiples of 8, so the value equals one add() over the whole file.
std::pair<std::uint64_t, std::uint64_t> file_size_and_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw snapshot_error("cannot open " + path);
  std::vector<char> block(1 << 20);
  hasher h;
  std::uint64_t size = 0;
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    h.add(block.data(), got);
    size += got;
  }
  return {size, h.value()};
}

class writer {
 public:
  template <class T>
  void pod(const T& value) {
    out_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  void text(const std::string& s) {
    pod(static_cast<std::uint64_t>(s.size()));
    out_.append(s);
  }
  std::string finish() && {
    hasher h;
    h.add(out_.data(), out_.size());
    pod(h.value());
    return std::move(out_);
  }

 private:
  std::string out_;
};

class reader {
 public:
  explicit reader(const std::string& data) : data_(data) {}

  template <class T>
  T pod() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, data_.data() + at_, sizeof value);
    at_ += sizeof value;
    return value;
  }
  std::string text() {
    const auto size = pod<std::uint64_t>();
    need(size);
    std::string s = data_.substr(at_, size);
    at_ += size;
    return s;
  }
  bool done() const { return at_ == data_.size(); }

 private:
  void need(std::uint64_t n) const {
    if (n > data_.size() - at_) throw snapshot_error("snapshot metadata is truncated");
  }
  const std::string& data_;
  std::size_t at_ = 0;
};

std::string graph_path(const std::string& path) { return path + ".hnsw"; }

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw snapshot_error("cannot open " + path);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw snapshot_error("cannot read " + path);
  return data;
}

void write_entry(writer& w, std::uint32_t slot, const pattern_entry& e) {
  w.pod(slot);
  w.pod(e.pattern_id);
  w.text(e.speaker_id);
  w.text(e.client_id);
  w.text(e.bucket_type);
  w.text(e.original_text);
  w.text(e.corrected_text);
  w.text(e.context_text);
  w.pod(static_cast<std::uint32_t>(e.error_categories.size()));
  for (const auto& c : e.error_categories) w.text(c);
  w.text(e.audio_quality);
  w.text(e.speaker_clarity);
  w.text(e.background_noise);
  w.pod(e.number_of_speakers);
  w.pod(static_cast<std::uint8_t>((e.overlapping_speech ? overlapping_bit : 0) |
                                  (e.requires_specialized_knowledge ? specialized_bit : 0)));
  w.text(e.status);
  w.pod(e.weight);
  w.pod(e.created_at_ms);
  w.pod(e.version);
}

pattern_entry read_entry(reader& r) {
  pattern_entry e;
  e.pattern_id = r.pod<std::int64_t>();
  e.speaker_id = r.text();
  e.client_id = r.text();
  e.bucket_type = r.text();
  e.original_text = r.text();
  e.corrected_text = r.text();
  e.context_text = r.text();
  const auto categories = r.pod<std::uint32_t>();
  for (std::uint32_t i = 0; i < categories; ++i) e.error_categories.push_back(r.text());
  e.audio_quality = r.text();
  e.speaker_clarity = r.text();
  e.background_noise = r.text();
  e.number_of_speakers = r.pod<std::int32_t>();
  const auto bits = r.pod<std::uint8_t>();
  e.overlapping_speech = (bits & overlapping_bit) != 0;
  e.requires_specialized_knowledge = (bits & specialized_bit) != 0;
  e.status = r.text();
  e.weight = r.pod<double>();
  e.created_at_ms = r.pod<std::int64_t>();
  e.version = r.pod<std::int64_t>();
  return e;
}

template <class T>
void expect_equal(const char* what, const T& found, const T& wanted) {
  if (found != wanted)
    throw snapshot_error(std::string("snapshot was built with another ") + what);
}

}  // namespace

void pattern_index::save(const std::string& path) const {
  const auto& ix = *impl_;
  const std::string graph_file = graph_path(path);
  const std::string graph_tmp = graph_file + ".tmp";
  const std::string meta_tmp = path + ".tmp";
  ix.save_graph(graph_tmp);
  const auto [graph_size, graph_hash] = file_size_and_hash(graph_tmp);

  writer w;
  w.pod(magic);
  w.pod(format_version);
  w.text(ix.embedder_name);
  w.text(ix.source_tag);
  w.pod(ix.config.dimension);
  w.pod(static_cast<std::uint64_t>(ix.config.m));
  w.pod(static_cast<std::uint64_t>(ix.config.ef_construction));
  w.pod(static_cast<std::uint64_t>(ix.ids.size()));
  w.pod(graph_size);
  w.pod(graph_hash);
  w.pod(static_cast<std::uint64_t>(ix.live));
  for (std::uint32_t slot = 0; slot < ix.ids.size(); ++slot)
    if (ix.flags[slot] & detail::slot_flag::alive) write_entry(w, slot, ix.materialise(slot));
  const std::string meta = std::move(w).finish();
  {
    std::ofstream out(meta_tmp, std::ios::binary | std::ios::trunc);
    out.write(meta.data(), static_cast<std::streamsize>(meta.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write " + meta_tmp);
  }
  std::filesystem::rename(graph_tmp, graph_file);
  std::filesystem::rename(meta_tmp, path);
}

pattern_index pattern_index::load(const std::string& path, const index_config& config,
                                  const std::string& embedder_name) {
  const std::string meta = read_whole(path);
  if (meta.size() < sizeof(std::uint64_t)) throw snapshot_error("snapshot metadata is truncated");
  const std::size_t body = meta.size() - sizeof(std::uint64_t);
  hasher h;
  h.add(meta.data(), body);
  std::uint64_t recorded;
  std::memcpy(&recorded, meta.data() + body, sizeof recorded);
  if (h.value() != recorded) throw snapshot_error("snapshot metadata checksum mismatch");

  const std::string content = meta.substr(0, body);
  reader r(content);
  const auto found_magic = r.pod<std::array<char, sizeof magic>>();
  if (std::memcmp(found_magic.data(), magic, sizeof magic) != 0)
    throw snapshot_error("not a pattern index snapshot");
  expect_equal("format", r.pod<std::uint32_t>(), format_version);
  expect_equal("embedder", r.text(), embedder_name);
  std::string source_tag = r.text();
  expect_equal("dimension", r.pod<std::uint32_t>(), config.dimension);
  expect_equal("graph parameter m", r.pod<std::uint64_t>(), static_cast<std::uint64_t>(config.m));
  expect_equal("graph parameter ef_construction", r.pod<std::uint64_t>(),
               static_cast<std::uint64_t>(config.ef_construction));
  const auto slots = r.pod<std::uint64_t>();
  const auto graph_size = r.pod<std::uint64_t>();
  const auto graph_hash = r.pod<std::uint64_t>();
  const auto live = r.pod<std::uint64_t>();
  if (slots > std::numeric_limits<std::uint32_t>::max() || live > slots)
    throw snapshot_error("snapshot counts are inconsistent");

  const auto [found_size, found_hash] = file_size_and_hash(graph_path(path));
  if (found_size != graph_size || found_hash != graph_hash)
    throw snapshot_error("snapshot graph does not match its metadata");

  auto ix = std::make_unique<impl>(config, embedder_name);
  ix->load_graph(graph_path(path));
  if (ix->graph_nodes() != slots || ix->graph_deleted() != slots - live)
    throw snapshot_error("snapshot graph holds other nodes than its metadata");

  for (std::uint64_t i = 0; i < slots; ++i) ix->new_slot();
  ix->map_nodes(slots);
  std::uint64_t previous = 0;
  for (std::uint64_t i = 0; i < live; ++i) {
    const auto slot = r.pod<std::uint32_t>();
    if (slot >= slots || (i > 0 && slot <= previous))
      throw snapshot_error("snapshot slots are out of order");
    previous = slot;
    pattern_entry e = read_entry(r);
    if (e.pattern_id <= 0 || ix->slot_of.count(e.pattern_id))
      throw snapshot_error("snapshot holds a bad or repeated pattern_id");
    if (!ix->live_in_graph(slot))
      throw snapshot_error("snapshot graph has deleted the node of a live slot");
    ix->assign(slot, std::move(e));
    ix->link(slot);
  }
  if (!r.done()) throw snapshot_error("snapshot metadata has trailing bytes");
  ix->tombstones = slots - live;
  ix->source_tag = std::move(source_tag);
  return pattern_index(std::move(ix));
}

}  // namespace sbm::patterns
