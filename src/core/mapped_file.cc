#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fastgen {

Expected<std::shared_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError("cannot stat " + path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError(path + " is not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return IoError("cannot mmap " + path + ": " + std::strerror(err));
    }
    file->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return file;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Expected<std::string> ReadTextFile(const std::string& path, const ReadLimit& limit) {
  if (path.empty()) return InvalidArgument(std::string("no path given for the ") + limit.what);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError("cannot stat " + path + ": " + std::strerror(err));
  }
  auto too_large = [&] {
    return IoError(path + ": larger than the " + std::to_string(limit.max_bytes >> 20) +
                           " MiB limit for a " + limit.what);
  };
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return IoError(path + " is a directory, not a " + std::string(limit.what));
  }
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > limit.max_bytes) {
    ::close(fd);
    return too_large();
  }
  std::string text;
  if (S_ISREG(st.st_mode)) text.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buf, sizeof(buf));
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return IoError("cannot read " + path + ": " + std::strerror(err));
    }
    if (got == 0) break;
    if (text.size() + static_cast<size_t>(got) > limit.max_bytes) {
      ::close(fd);
      return too_large();
    }
    text.append(buf, static_cast<size_t>(got));
  }
  ::close(fd);
  return text;
}

}  // namespace fastgen

namespace fastgen {

Expected<std::string> ReadTextPrefix(const std::string& path, size_t max_bytes, const char* what) {
  if (path.empty()) return InvalidArgument(std::string("no path given for the ") + what);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return IoError(path + " is a directory, not a " + std::string(what));
  // zlib reads plain files through gzread as well: one path for both.
  gzFile f = ::gzopen(path.c_str(), "rb");
  if (f == nullptr) return IoError("cannot open " + path + ": " + std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  while (text.size() < max_bytes) {
    const int want = static_cast<int>(std::min(sizeof(buf), max_bytes - text.size()));
    const int got = ::gzread(f, buf, static_cast<unsigned>(want));
    if (got < 0) {
      int code = 0;
      const std::string why = ::gzerror(f, &code);
      ::gzclose(f);
      return CorruptFile(path + ": cannot read the " + std::string(what) + ": " + why);
    }
    if (got == 0) break;
    text.append(buf, static_cast<size_t>(got));
  }
  ::gzclose(f);
  return text;
}

}  // namespace fastgen
