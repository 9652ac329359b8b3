"""What the paper measures on a model: accuracy on every variant and the BG-Gap (`evaluate`), the backgrounds
challenge (`adversarial`), the fine-grained categories (`finegrained`), benchmark progress (`progress`), Grad-CAM's
share on the foreground (`saliency`), and unsupervised localization by representer points (`rps`, the WSOL
metrics `wsol`, masks for a folder of photos `masks`, the `localize` command's experiment)."""
