// Stand-in for the WebUI's page scripts around an extension's javascript/*.js (A1111 v1.10.1,
// 82a973c0; Forge's are the same): gradioApp, onUiLoaded and onAfterUiUpdate from script.js
// (lines 1-11, 52-66, 95-141; loaded once #txt2img_prompt exists), updateInput from
// javascript/ui.js (366-370), and javascript/inputAccordion.js (an InputAccordion's hidden
// checkbox follows its accordion: opening it ticks the checkbox, a paste that ticks it opens it).
function gradioApp() {
    const elems = document.getElementsByTagName('gradio-app');
    const elem = elems.length == 0 ? document : elems[0];
    if (elem !== document) {
        elem.getElementById = function(id) {
            return document.getElementById(id);
        };
    }
    return elem.shadowRoot ? elem.shadowRoot : elem;
}

var uiLoadedCallbacks = [];
var uiAfterUpdateCallbacks = [];
var uiAfterUpdateTimeout = null;
var executedOnLoaded = false;

function onUiLoaded(callback) {
    uiLoadedCallbacks.push(callback);
}

function onAfterUiUpdate(callback) {
    uiAfterUpdateCallbacks.push(callback);
}

function executeCallbacks(queue, arg) {
    for (const callback of queue) {
        try {
            callback(arg);
        } catch (e) {
            console.error("error running callback", callback, ":", e);
        }
    }
}

document.addEventListener("DOMContentLoaded", function() {
    var mutationObserver = new MutationObserver(function() {
        if (!executedOnLoaded && gradioApp().querySelector('#txt2img_prompt')) {
            executedOnLoaded = true;
            executeCallbacks(uiLoadedCallbacks);
        }
        clearTimeout(uiAfterUpdateTimeout);
        uiAfterUpdateTimeout = setTimeout(function() {
            executeCallbacks(uiAfterUpdateCallbacks);
        }, 200);
    });
    mutationObserver.observe(gradioApp(), {childList: true, subtree: true});
});

function updateInput(target) {
    let e = new Event("input", {bubbles: true});
    Object.defineProperty(e, "target", {value: target});
    target.dispatchEvent(e);
}

function inputAccordionChecked(id, checked) {
    var accordion = gradioApp().getElementById(id);
    accordion.visibleCheckbox.checked = checked;
    accordion.onVisibleCheckboxChange();
}

function setupAccordion(accordion) {
    var labelWrap = accordion.querySelector('.label-wrap');
    var gradioCheckbox = gradioApp().querySelector('#' + accordion.id + "-checkbox input");
    var span = labelWrap.querySelector('span');
    var linked = true;
    var isOpen = function() {
        return labelWrap.classList.contains('open');
    };
    new MutationObserver(function() {
        accordion.classList.toggle('input-accordion-open', isOpen());
        if (linked) {
            accordion.visibleCheckbox.checked = isOpen();
            accordion.onVisibleCheckboxChange();
        }
    }).observe(labelWrap, {attributes: true, attributeFilter: ['class']});

    var visibleCheckbox = document.createElement('INPUT');
    visibleCheckbox.type = 'checkbox';
    visibleCheckbox.checked = isOpen();
    visibleCheckbox.id = accordion.id + "-visible-checkbox";
    visibleCheckbox.className = gradioCheckbox.className + " input-accordion-checkbox";
    span.insertBefore(visibleCheckbox, span.firstChild);

    accordion.visibleCheckbox = visibleCheckbox;
    accordion.onVisibleCheckboxChange = function() {
        if (linked && isOpen() != visibleCheckbox.checked) {
            labelWrap.click();
        }
        gradioCheckbox.checked = visibleCheckbox.checked;
        updateInput(gradioCheckbox);
    };
    visibleCheckbox.addEventListener('click', function(event) {
        linked = false;
        event.stopPropagation();
    });
    visibleCheckbox.addEventListener('input', accordion.onVisibleCheckboxChange);
}

onUiLoaded(function() {
    for (var accordion of gradioApp().querySelectorAll('.input-accordion')) {
        setupAccordion(accordion);
    }
});
