// The screen handed over at the desk clears itself when left idle. WCAG 2.2.1: a minute
// before, a warning says so, and one press gives the full time again. The server ends the
// hand-over on its own clock all the same; this only takes the page off the screen.
(() => {
  const idle = document.getElementById("idle");
  if (!idle) return;
  const seconds = Number(idle.dataset.seconds);
  const warning = document.getElementById("idle-warning");
  let warnTimer = 0;
  let clearTimer = 0;
  const arm = () => {
    clearTimeout(warnTimer);
    clearTimeout(clearTimer);
    warning.hidden = true;
    warnTimer = setTimeout(() => {
      warning.hidden = false;
      warning.querySelector("button").focus();
    }, Math.max(seconds - 60, seconds / 2) * 1000);
    clearTimer = setTimeout(() => location.replace(idle.dataset.cleared), seconds * 1000);
  };
  // More time: the warning's button is a form (POST), which slides the hand-over's own
  // expiry forward; reading the screen again never does.
  for (const type of ["keydown", "pointerdown"]) document.addEventListener(type, arm);
  arm();
})();
