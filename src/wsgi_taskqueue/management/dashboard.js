// The wsgi-taskqueue dashboard: refresh the server-rendered panels, post
// the buttons to the JSON API.  Relative URLs: the app may be mounted
// anywhere.
(function () {
  'use strict';
  var panels = document.getElementById('panels');
  var refreshed = document.getElementById('refresh');
  var message = document.getElementById('message');
  var token = document.querySelector('meta[name="csrf-token"]').content;
  var interval = parseInt(refreshed.dataset.interval, 10) || 1500;
  // The page's ?label= narrows the task panels; their refresh keeps it.
  var label = panels.dataset.label;
  var panelsUrl = label ? 'panels?label=' + encodeURIComponent(label)
                        : 'panels';
  var timer = null;

  function failed(response) {
    if (response.status === 404) {
      // The session expired (or the key changed): nothing is there
      // without it.
      return new Error('signed out: open the dashboard with ?key=… again');
    }
    return new Error('the server answered ' + response.status);
  }

  function swap(html) {
    // Keep the error details a reader opened.
    var open = {};
    panels.querySelectorAll('details[open]').forEach(function (details) {
      open[details.dataset.key] = true;
    });
    panels.innerHTML = html;
    panels.querySelectorAll('details').forEach(function (details) {
      if (open[details.dataset.key]) { details.open = true; }
    });
  }

  function refresh() {
    clearTimeout(timer);
    fetch(panelsUrl, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (response) {
        if (!response.ok) { throw failed(response); }
        return response.text();
      })
      .then(function (html) {
        swap(html);
        refreshed.textContent = 'live, updated ' +
          new Date().toLocaleTimeString();
        refreshed.className = '';
      })
      .catch(function (error) {
        refreshed.textContent = error.message;
        refreshed.className = 'error';
      })
      .then(function () { timer = setTimeout(refresh, interval); });
  }

  // What each button's answer tells the reader.
  var outcomes = {
    purge: function (body) {
      return 'Purged ' + body.purged + ' dead letter(s).';
    },
    requeue: function (body) {
      return 'Requeued task ' + (body.task_id || '(not a task)') + '.';
    },
    close: function (body) {
      return body.closed ? 'Closed job ' + body.job.id + ' (' +
        body.job.state + ').' : 'Job ' + body.job.id + ' was ' +
        body.job.state + ' already.';
    }
  };

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? 'error' : '';
    message.hidden = false;
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-action]');
    if (!button) { return; }
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      return;
    }
    button.disabled = true;
    fetch(button.dataset.url, {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: {'X-CSRF-Token': token}
    })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) {
            throw new Error(body.error || 'the server answered ' +
                            response.status);
          }
          return body;
        });
      })
      .then(function (body) {
        say(outcomes[button.dataset.action](body));
      })
      .catch(function (error) {
        say(error.message, true);
        button.disabled = false;
      })
      .then(refresh);
  });

  timer = setTimeout(refresh, interval);
}());
