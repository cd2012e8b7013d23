#include "bench/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "fetch/json_line.hpp"
#include "proto/text.hpp"

namespace exitpool::bench {

namespace {

// Milliseconds with three significant digits or so: 0.047, 2.30, 106.5.
std::string ms(std::uint64_t us) {
  const double v = static_cast<double>(us) / 1000.0;
  return v < 1 ? fmt::format("{:.3f}", v) : v < 10 ? fmt::format("{:.2f}", v) : fmt::format("{:.1f}", v);
}

std::string int_list_text(const std::vector<int>& v) {
  std::string s;
  for (const int x : v) {
    s += (s.empty() ? "" : ",") + std::to_string(x);
  }
  return s;
}

}  // namespace

std::string render_table(const report& r) {
  std::string out = fmt::format("exitpool bench: {} {}, {:g} s per cell\n", proto::clip(r.url, 200),
                                proto::clip(r.through, 200), r.duration_s);
  out += fmt::format("{:>7} {:>9} {:>10} {:>8} {:>8} {:>11} {:>6} {:>7}\n", "threads", "in flight", "req/s", "p50 ms",
                     "p99 ms", "cpu us/req", "cores", "errors");
  for (const auto& c : r.cells) {
    if (!c.ran) {
      out += fmt::format("{:>7} {:>9}   skipped: fewer in flight than threads\n", c.threads, c.inflight);
      continue;
    }
    out += fmt::format("{:>7} {:>9} {:>10.1f} {:>8} {:>8} {:>11.1f} {:>6.2f} {:>7}", c.threads, c.inflight, c.rps(),
                       ms(c.p50_us), ms(c.p99_us), c.cpu_us_per_request(), c.cores(), c.errors);
    if (!c.first_error.empty()) {
      out += "  first error: " + proto::clip(c.first_error, 160);
    }
    out += '\n';
  }
  out += "advice: " + r.adv.text + "\n";
  return out;
}

std::string render_json(const report& r) {
  std::string o = "{\"url\":";
  fetch::append_json_string(o, r.url);
  o += ",\"through\":";
  fetch::append_json_string(o, r.through);
  o += fmt::format(",\"duration_s\":{:g},\"threads\":[{}],\"concurrency\":[{}],\"cells\":[", r.duration_s,
                   int_list_text(r.threads), int_list_text(r.inflight));
  bool first = true;
  for (const auto& c : r.cells) {
    o += first ? "" : ",";
    first = false;
    o += fmt::format("{{\"threads\":{},\"concurrency\":{},\"ran\":{}", c.threads, c.inflight, c.ran);
    if (c.ran) {
      o += fmt::format(
          ",\"ok\":{},\"errors\":{},\"unfinished\":{},\"seconds\":{:.3f},\"rps\":{:.1f},\"p50_ms\":{:.3f},"
          "\"p99_ms\":{:.3f},\"cpu_seconds\":{:.3f},\"cpu_us_per_request\":{:.1f},\"cores\":{:.3f},\"first_error\":",
          c.ok, c.errors, c.unfinished, c.seconds, c.rps(), static_cast<double>(c.p50_us) / 1000.0,
          static_cast<double>(c.p99_us) / 1000.0, c.cpu_seconds, c.cpu_us_per_request(), c.cores());
      if (c.first_error.empty()) {
        o += "null";
      } else {
        fetch::append_json_string(o, c.first_error);
      }
    }
    o += '}';
  }
  o += fmt::format(
      "],\"advice\":{{\"bound\":\"{}\",\"threads\":{},\"concurrency\":{},\"rps\":{:.1f},"
      "\"best_rps\":{:.1f},\"text\":",
      bound_name(r.adv.b), r.adv.threads, r.adv.inflight, r.adv.rps, r.adv.best_rps);
  fetch::append_json_string(o, r.adv.text);
  o += "}}\n";
  return o;
}

namespace {

// Text for an SVG element: XML's five entities; control bytes (not allowed in XML 1.0)
// become spaces.
std::string xml_text(std::string_view s) {
  std::string out;
  for (const char ch : proto::printable(s)) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      out += '?';  // a cut may have split a UTF-8 sequence: ASCII only keeps the document valid
      continue;
    }
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

// From a pale to a deep blue as `f` goes from 0 to 1.
std::string shade(double f) {
  f = std::clamp(f, 0.0, 1.0);
  auto mix = [f](int lo, int hi) { return static_cast<int>(std::lround(lo + (hi - lo) * f)); };
  return fmt::format("#{:02x}{:02x}{:02x}", mix(0xf2, 0x08), mix(0xf7, 0x30), mix(0xfd, 0x6b));
}

std::string rps_text(double rps) {
  return rps >= 100 ? fmt::format("{:.0f}", rps) : fmt::format("{:.1f}", rps);
}

}  // namespace

std::string render_svg(const report& r) {
  constexpr int cw = 96, ch = 56, left = 90, top = 96, bottom = 60;
  const int cols = static_cast<int>(r.inflight.size());
  const int rows = static_cast<int>(r.threads.size());
  const int width = std::max(840, left + cols * cw + 20);
  const int height = top + rows * ch + bottom;
  double best = 0;
  for (const auto& c : r.cells) {
    best = std::max(best, c.ran ? c.rps() : 0.0);
  }
  std::string s = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"13\">\n"
      "<title>exitpool bench: req/s over threads x requests in flight</title>\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n"
      "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">req/s: threads x requests in flight</text>\n"
      "<text x=\"10\" y=\"40\" fill=\"#444444\">{2}</text>\n",
      width, height, xml_text(proto::clip(r.url + " " + r.through, 120)));
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444444\">in flight (all threads)</text>\n",
                   left + cols * cw / 2, top - 30);
  s += fmt::format(
      "<text x=\"14\" y=\"{}\" fill=\"#444444\" transform=\"rotate(-90 14 {})\" "
      "text-anchor=\"middle\">threads</text>\n",
      top + rows * ch / 2, top + rows * ch / 2);
  for (int j = 0; j < cols; ++j) {
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n",
                     left + j * cw + cw / 2, top - 10, r.inflight[static_cast<std::size_t>(j)]);
  }
  for (int i = 0; i < rows; ++i) {
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-weight=\"bold\">{}</text>\n", left - 8,
                     top + i * ch + ch / 2 + 5, r.threads[static_cast<std::size_t>(i)]);
  }
  for (const auto& c : r.cells) {
    const auto col = std::find(r.inflight.begin(), r.inflight.end(), c.inflight) - r.inflight.begin();
    const auto row = std::find(r.threads.begin(), r.threads.end(), c.threads) - r.threads.begin();
    if (col >= cols || row >= rows) {
      continue;
    }
    const int x = left + static_cast<int>(col) * cw;
    const int y = top + static_cast<int>(row) * ch;
    const bool picked = c.ran && c.threads == r.adv.threads && c.inflight == r.adv.inflight;
    const double f = best > 0 ? c.rps() / best : 0;
    const std::string fill = c.ran ? shade(f) : "#dddddd";
    const std::string ink = c.ran && f > 0.5 ? "#ffffff" : "#111111";
    s += fmt::format(
        "<g class=\"cell\" data-threads=\"{}\" data-concurrency=\"{}\" data-rps=\"{:.1f}\">"
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"{}\" stroke-width=\"{}\"/>",
        c.threads, c.inflight, c.ran ? c.rps() : 0.0, x + 1, y + 1, cw - 2, ch - 2, fill,
        picked ? "#e6550d" : "#ffffff", picked ? 4 : 1);
    const std::string label = c.ran ? rps_text(c.rps()) : "-";
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{}</text>", x + cw / 2, y + ch / 2 + 5,
                     ink, label);
    if (c.ran && c.errors > 0) {
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{}\">{} err</text>",
                       x + cw / 2, y + ch - 8, ink, c.errors);
    }
    s += "</g>\n";
  }
  s += fmt::format(
      "<text x=\"{}\" y=\"20\" text-anchor=\"end\" fill=\"#e6550d\" font-size=\"11\">outlined: the advised "
      "setting</text>\n",
      width - 10);
  // The advice in two lines (why; the setting), each short enough for the width.
  const std::string_view text = r.adv.text;
  const auto semi = text.find("; ");
  s += fmt::format("<text x=\"10\" y=\"{}\" fill=\"#111111\">{}</text>\n", top + rows * ch + 24,
                   xml_text(proto::clip(text.substr(0, semi), 120)));
  if (semi != std::string_view::npos) {
    s += fmt::format("<text x=\"10\" y=\"{}\" fill=\"#111111\" font-weight=\"bold\">{}</text>\n", top + rows * ch + 44,
                     xml_text(proto::clip(text.substr(semi + 2), 120)));
  }
  s += "</svg>\n";
  return s;
}

}  // namespace exitpool::bench
