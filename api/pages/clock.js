// The agency's local time on the signed-in pages, as the server writes it (archive.localtime):
// "2024-06-10 22:03:05 北京时间" / "2024-06-10 22:03:05 CST (UTC+08:00)", the zone named in the page's
// language (page-clock: {timezone, language, zone_names: {offset minutes: name}}), any other offset
// as UTC±hh:mm. Loaded before review.js and oversight.js, which share it.
"use strict";

// custodyClock(clock, {millis}) -> (ms since the epoch) -> text. With millis, a fraction of a second
// is shown when there is one (corrected recording times are often fractional).
function custodyClock(clock, { millis = false } = {}) {
  const local = new Intl.DateTimeFormat("en-US", {
    timeZone: clock.timezone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return function format(ms) {
    ms = Math.floor(ms);
    const p = Object.fromEntries(local.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
    const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    const offset = Math.round((wall - Math.floor(ms / 1000) * 1000) / 60000);
    const sign = offset < 0 ? "-" : "+";
    const zone = clock.zone_names[String(offset)] ||
      `UTC${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
    const milli = ((ms % 1000) + 1000) % 1000;
    const frac = millis && milli ? "." + pad(milli, 3) : "";
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}${frac} ${zone}`;
  };
}
