#pragma once
// The dashboard's static files (src/admin/dashboard/), compiled into the binary by
// cmake/embed_assets.cmake: no file is read, no CDN reached, no build tool run when the
// gateway serves them. Immutable: any thread.

#include <span>
#include <string_view>

namespace exitpool::admin {

struct dashboard_asset {
  std::string_view path;  // "/" for index.html, else "/NAME"
  std::string_view content_type;
  std::string_view body;
};

std::span<const dashboard_asset> dashboard_assets();

// The asset served at `path`, or null.
inline const dashboard_asset* find_dashboard_asset(std::string_view path) {
  for (const auto& a : dashboard_assets()) {
    if (a.path == path) {
      return &a;
    }
  }
  return nullptr;
}

}  // namespace exitpool::admin
