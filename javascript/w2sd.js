// Hover hints for the W2SD accordion (sd-webui-w2sd), in txt2img and img2img.
// Fields are found by elem_id `w2sd_<tab>_<field>` (lib_w2sd/webui/ui.py `elem_id`); the hint goes
// on the field's block (on the header only for the accordion), and each radio / checkbox option
// gets its own. Preset names also go into the WebUI's `titles` (javascript/hints.js), which
// titles dropdown items by their text.
(function() {
    const FIELD_HINTS = {
        enabled: "W2SD (Weak-to-Strong Diffusion with Reflection): at chosen steps, denoise with the strong model, then invert that step with a weaker model. The latent moves along strong minus weak, toward what the strong model does better. Each reflected step costs two extra model calls.",
        preset: "Fills the fields below with a tested combination. Edit any field afterwards; the label turns to Custom when you change a field the preset set.",
        weak_kinds: "What makes the weak model weaker. Tick one or more; each shows its own fields. The bigger the difference, the bigger the effect; a 'weak' model that is actually better makes images worse.",
        weak_cfg: "CFG scale of the weak model's call. Low (1.0) against the generation's CFG gives the Z-Sampling guidance gap: more prompt-following and detail.",
        strong_cfg: "CFG scale of the reflection's strong call. 0 uses the generation's CFG. The paper's default is 5.5 with a weak CFG of 1.0.",
        weak_prompt: "Prompt of the weak model. Put your short, raw prompt here and the refined, detailed one in the main prompt: W2SD pushes toward what the refined prompt adds. Empty: the generation's prompt.",
        weak_negative_prompt: "Negative prompt of the weak model. Empty: the generation's negative prompt.",
        weak_lora_multiplier: "Multiplier of the prompt's LoRAs in the weak model. 0 = the base model without the LoRA (the usual pair for a personalization or quality LoRA); negative values push further away (paper: -1.5).",
        strong_lora_multiplier: "Multiplier of the prompt's LoRAs in the reflection's strong call. 0 keeps the prompt's own multipliers; the paper uses +1.5 against a weak -1.5.",
        weak_checkpoint: "Another checkpoint as the weak model, e.g. the base model your fine-tune was trained from (SD1.5 under DreamShaper, SDXL base under Juggernaut-XL). Same architecture as the main checkpoint. Costs memory: see Settings > W2SD.",
        weak_checkpoint_refresh: "Refresh the checkpoint list.",
        weak_controlnet_weight: "The weak model is the same pipeline with its ControlNet / IP-Adapter units turned down: each unit's weight times this. 0 (default) = without the units, and the cheapest (their models do not run in the weak call). W2SD then pushes the image toward what the units add: closer to the control image.",
        strong_controlnet_weight: "Each ControlNet / IP-Adapter unit's weight times this in the reflection's strong call. 0 keeps the units' own weights.",
        reflect_steps: "How many steps get a reflection, counted from the first step: a fraction of the steps (0.5 = the first half, 1 = every step) or a number of steps. Typing a whole number above 1 switches Steps unit to steps. The early steps decide the composition; the paper reflects every step but the last.",
        reflect_unit: "Whether Reflect steps is a fraction of the sampling steps or a number of steps. Switching starts it at half of the steps.",
        strength: "How far each reflection moves the image: 1 = the paper's reflection, 0 = plain sampling, above 1 exaggerates it (try 0.5 if images overcook).",
        advanced: "Settings for experiments with the method itself. The defaults suit almost every image.",
        weak_sigma: "A reflection takes one step with the strong model and then undoes it with the weak model. This chooses what the weak model is shown while undoing it: start (default, safest), next or current (as the paper's own code).",
        reflections: "How many times each reflected step is reflected. More makes the effect stronger; each costs two extra model calls.",
        hires: "Also reflect during the hires-fix second pass, with its own step count (same unit).",
        hires_reflect_steps: "Reflect steps of the hires-fix pass, in the same unit as Reflect steps.",
    };

    const OPTION_HINTS = {
        preset: {
            "Z-Sampling (CFG gap)": "Weak model = the same model at CFG 1.0; strong = the generation's CFG. Works with any checkpoint, no extra files.",
            "Paper defaults (LoRA +1.5/-1.5, CFG 5.5/1.0)": "The official code's setting: strong = LoRA x1.5 at CFG 5.5, weak = LoRA x-1.5 at CFG 1.0, every step reflected. Needs a LoRA in the prompt.",
            "Checkpoint pair": "Weak model = another checkpoint (pick it below), e.g. the base model of your fine-tune.",
            "Prompt refinement": "Weak model = the same model with your raw prompt (type it below); the main prompt is the refined one.",
            "Custom": "Your own combination of the fields below.",
        },
        weak_kinds: {
            "CFG": "Weak model = a lower CFG scale.",
            "Prompt": "Weak model = another (raw, shorter) prompt.",
            "LoRA": "Weak model = the prompt's LoRAs at another multiplier.",
            "Checkpoint": "Weak model = another checkpoint.",
            "ControlNet": "Weak model = the same pipeline without its ControlNet / IP-Adapter units (or with them turned down). Needs an active ControlNet unit.",
        },
        reflect_unit: {
            "fraction": "Reflect steps is a fraction of the sampling steps, from 0 to 1.",
            "steps": "Reflect steps is a number of steps.",
        },
        weak_sigma: {
            "start": "Default. The weak model sees the image as it was before the strong step: if weak and strong are the same model, nothing changes.",
            "next": "The weak model sees the image after the strong step, at its new noise level (DDIM inversion).",
            "current": "As the paper's code: the weak model sees the image after the strong step, but is told the noise level from before it.",
        },
    };

    function setTitle(element, text) {
        if (element && text && element.title !== text) {
            element.title = text;
        }
    }

    function applyHints() {
        for (const tab of ["txt2img", "img2img"]) {
            for (const [field, hint] of Object.entries(FIELD_HINTS)) {
                const block = gradioApp().getElementById(`w2sd_${tab}_${field}`);
                if (!block) continue;
                // An accordion's hint belongs on its header only, not on everything inside it.
                const header = field === "enabled" || field === "advanced";
                setTitle(header ? block.querySelector(".label-wrap") : block, hint);
            }
            for (const [field, options] of Object.entries(OPTION_HINTS)) {
                const block = gradioApp().getElementById(`w2sd_${tab}_${field}`);
                if (!block) continue;
                block.querySelectorAll("label").forEach(function(label) {
                    setTitle(label, options[label.textContent.trim()]);
                });
            }
        }
    }

    if (typeof titles !== "undefined") {
        for (const [name, hint] of Object.entries(OPTION_HINTS.preset)) {
            if (name !== "Custom") titles[name] = hint; // "Custom" is too common a word to title globally
        }
    }

    let timer = null;
    onUiLoaded(applyHints);
    onAfterUiUpdate(function() {
        clearTimeout(timer);
        timer = setTimeout(applyHints, 500);
    });
})();
