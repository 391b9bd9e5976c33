// Compiled into a layer library that has no sources yet.
namespace fastgen {}
