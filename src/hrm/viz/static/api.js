// Talking to the server, and showing errors. Every message is put in the page as text (textContent),
// so a file name or a server message can never inject markup.

export async function getJSON(url) {
  let response;
  try {
    response = await fetch(url, { cache: "no-cache" });
  } catch (error) {
    throw new Error(`cannot reach the hrm viz server (${error.message}); is it still running?`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new Error(`${url}: the server answered ${response.status} with something that is not JSON`);
  }
  if (!response.ok || (body && body.error)) {
    const error = new Error(body && body.error ? body.error : `${url}: HTTP ${response.status}`);
    error.body = body;
    throw error;
  }
  return body;
}

export function showError(message) {
  const box = document.getElementById("errors");
  const item = document.createElement("div");
  item.className = "error-box";
  item.textContent = String(message);
  box.append(item);
  box.hidden = false;
  const loading = document.getElementById("loading");
  if (loading) loading.hidden = true;
}

export function clearErrors() {
  const box = document.getElementById("errors");
  box.replaceChildren();
  box.hidden = true;
}

// Anything that escapes a handler still reaches the user.
window.addEventListener("error", (event) => showError(`page error: ${event.message}`));
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  showError(reason && reason.message ? reason.message : String(reason));
});
