// Appends alarm events from the server-sent event stream to the list on
// the live page. Text only (textContent), never markup.
"use strict";
(function () {
  var list = document.getElementById("events");
  var status = document.getElementById("live-status");
  if (!list || !window.EventSource) {
    return;
  }
  var source = new EventSource("/console/live/stream");
  source.addEventListener("open", function () {
    status.textContent = "Live: new alarm events appear at the top.";
    status.className = "ok-text";
  });
  source.addEventListener("error", function () {
    status.textContent = "Live stream interrupted; retrying…";
    status.className = "muted";
  });
  source.addEventListener("alarm", function (msg) {
    var e;
    try {
      e = JSON.parse(msg.data);
    } catch (err) {
      return;
    }
    var none = document.getElementById("no-events");
    if (none) {
      none.remove();
    }
    var li = document.createElement("li");
    li.className = "new";
    var time = document.createElement("span");
    time.className = "time";
    time.textContent = e.time;
    var type = document.createElement("span");
    type.className = "pill " + e.type;
    type.textContent = e.type;
    var thing = document.createElement("strong");
    thing.textContent = e.thing;
    li.append(time, " ", type, " ", thing, " " + e.profile + " / " + e.behavior);
    li.setAttribute("data-violation-id", e.violationId);
    list.insertBefore(li, list.firstChild);
  });
})();
